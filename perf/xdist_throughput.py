"""End-to-end throughput with 1 and 2 xdist workers sharing one model, against a serial run.

Runs ``pytest benchmarks/humaneval`` on the first N problems with the embedded SmolLM2 (or
``--model``), sampled (n samples per problem, seeded), with ``--codeeval-regenerate`` so every run
generates everything, one after the other on this machine:

* serial (no xdist),
* ``-n 1`` and ``-n 2``: the workers share one model in a generation service,
* ``-n 2 --codeeval-model-copies=0``: every worker loads its own copy (the old way), for contrast.

Prints per run the wall time, samples and tokens generated, model loads, tokens/s and samples/s,
and whether the per-problem outcomes and the generated programs equal the serial run's.

    python perf/xdist_throughput.py [--problems 16] [--n 2] [--max-new-tokens 128] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(label: str, extra: list[str], args: argparse.Namespace, out: Path) -> dict:
    results, saved = out / f"{label}.json", out / f"{label}.jsonl"
    ids = " or ".join(f"HumanEval_{i}]" for i in range(args.problems))
    command = [sys.executable, "-m", "pytest", "benchmarks/humaneval", "-q", "-p", "no:cacheprovider",
               "-k", ids, f"--codeeval-n={args.n}", "--codeeval-temperature=0.8", "--codeeval-seed=1",
               f"--codeeval-max-new-tokens={args.max_new_tokens}", "--codeeval-regenerate",
               f"--codeeval-json={results}", f"--codeeval-save-generations={saved}", *extra]
    if args.model:
        command.append(f"--codeeval-model={args.model}")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{label}: pytest exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    doc = json.loads(results.read_text())
    gen = dict(doc["config"]["generation"])
    # counted from the per-problem records, which every mode fills (a worker holding its own copy
    # reports its generation only there)
    records = [p["generation"] for p in doc["problems"]["humaneval"].values()]
    gen["samples_generated"] = sum(len(r["tokens"]) - r["from_cache"] for r in records)
    gen["tokens"] = sum(sum(r["tokens"]) for r in records)
    outcomes = {t: p["outcomes"] for t, p in doc["problems"]["humaneval"].items()}
    return {"label": label, "wall": wall, "gen": gen, "outcomes": outcomes, "programs": saved.read_text(),
            "pass1": doc["humaneval"]["pass@1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--model", default=None, help="checkpoint (default: the embedded SmolLM2)")
    args = parser.parse_args()
    runs = {"serial": [], "-n 1": ["-n", "1"], "-n 2": ["-n", "2"],
            "-n 2, a copy per worker": ["-n", "2", "--codeeval-model-copies=0"]}
    print(f"{args.problems} HumanEval problems x {args.n} samples (temperature 0.8, seed 1), max {args.max_new_tokens} "
          f"new tokens, model {args.model or 'embedded SmolLM2-135M-Instruct'}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(label.replace(" ", "").replace(",", "_"), extra, args, Path(tmp)) | {"label": label}
                for label, extra in runs.items()]
    serial = rows[0]
    print(f"{'run':<26}{'wall s':>8}{'samples':>9}{'tokens':>8}{'loads':>7}{'tok/s':>8}{'samples/s':>10}"
          f"{'pass@1':>8}  same as serial")
    for r in rows:
        gen = r["gen"]
        same = r["outcomes"] == serial["outcomes"] and r["programs"] == serial["programs"]
        print(f"{r['label']:<26}{r['wall']:>8.1f}{gen['samples_generated']:>9}{gen['tokens']:>8}"
              f"{gen.get('model_loads') if '-n 2, a copy' not in r['label'] else 'per wkr':>7}{gen['tokens'] / r['wall']:>8.1f}{gen['samples_generated'] / r['wall']:>10.2f}"
              f"{r['pass1']:>8.4f}  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
