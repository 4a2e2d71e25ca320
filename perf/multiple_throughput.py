"""MultiPL-E throughput and full-prompt-set check: samples/s per language, with labels and times.

For each benchmark asked for, every problem (or the first --limit) gets --n samples of a
trivially wrong completion (a body that compiles for any signature and fails at the first call;
with --right, the solved set's completion where there is one). The plugin judges them end to end
(pytest, the sandbox, compile then run, --codeeval-workers in parallel) and this script prints,
per benchmark: problems executed, label counts, wall time, samples/s, and the compile and run
seconds summed over samples.

    python perf/multiple_throughput.py                         # every problem of every prompt set, n=1
    python perf/multiple_throughput.py --bench humaneval-cpp --n 4 --limit 40
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_multiple import WRONG  # noqa: E402  (the same bodies the test suite uses)

from pytest_codeeval.benchmarks import multiple  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="append", help="benchmark(s), e.g. humaneval-cpp (default: all)")
    ap.add_argument("--n", type=int, default=1, help="samples per problem")
    ap.add_argument("--limit", type=int, default=0, help="first N problems of each set (default: all)")
    ap.add_argument("--workers", default="auto", help="--codeeval-workers (default: one per core)")
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--out", help="a directory to keep each benchmark's results file in")
    ap.add_argument("--data", default=os.environ.get("CODEEVAL_DATA") or str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    benches = args.bench or [f"{s}-{lang}" for s in multiple.SOURCES for lang in multiple.LANGUAGES]
    data = Path(args.data)
    print(f"{len(os.sched_getaffinity(0))} cores, workers={args.workers}, isolation={args.isolation}, n={args.n}")
    header = f"{'benchmark':<15} {'problems':>8} {'samples':>7} {'wall s':>7} {'samples/s':>9} {'compile s':>9} {'run s':>7}  labels"
    print(header)
    for bench in benches:
        path = data / multiple.FOLDER / multiple.file_name(bench)
        names = [json.loads(line)["name"] for line in path.read_text().splitlines() if line.strip()]
        if args.limit:
            names = names[: args.limit]
        lang = bench.split("-")[1]
        with tempfile.TemporaryDirectory() as tmp:
            gen = Path(tmp) / "samples.jsonl"
            with gen.open("w") as f:
                for name in names:
                    for _ in range(args.n):
                        f.write(json.dumps({"task_id": name, "completion": WRONG[lang]}) + "\n")
            out = Path(tmp) / "r.json"
            cmd = [sys.executable, "-m", "pytest", str(REPO / "benchmarks" / bench), "-q", "-p", "no:cacheprovider",
                   f"--codeeval-generations={bench}={gen}", f"--codeeval-json={out}", f"--codeeval-data={data}",
                   f"--codeeval-workers={args.workers}", f"--codeeval-isolation={args.isolation}", "--codeeval-k=1"]
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            wall = time.perf_counter() - started
            if not out.is_file():
                print(f"{bench}: no results ({done.returncode})\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
                continue
            doc = json.loads(out.read_text())
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                (Path(args.out) / f"{bench}.json").write_text(out.read_text())
        problems = doc["problems"].get(bench, {})
        labels = Counter(o for p in problems.values() for o in p["outcomes"])
        samples = sum(p["n"] for p in problems.values())
        compile_s = sum(s or 0 for p in problems.values() for s in p["compile_seconds"])
        run_s = sum(p["run_seconds"][i] for p in problems.values() for i in range(p["n"]))
        print(f"{bench:<15} {len(problems):>8} {samples:>7} {wall:>7.1f} {samples / wall:>9.2f} {compile_s:>9.1f} "
              f"{run_s:>7.1f}  {dict(labels.most_common())}", flush=True)
        odd = {task: p["outcomes"] for task, p in problems.items() if set(p["outcomes"]) != {"failed"}}
        for task, outcomes in odd.items():  # what a trivially wrong body should not get
            print(f"    {task}: {', '.join(sorted(set(outcomes)))}", flush=True)


if __name__ == "__main__":
    main()
