"""What a run served entirely from the generation cache costs, and whether it imports torch.

Runs ``pytest benchmarks/humaneval -k HumanEval_0 -p no:cacheprovider -q`` with the embedded
default model in subprocesses: once cold (fills a fresh generation cache; converts the embedded
model unless ``--models`` names a folder that already holds it), then ``--warm`` times fully
cached. A probe plugin (``-p``) records at session finish whether torch and transformers are in
``sys.modules``. Side by side with each warm run, a reference run that also reads transformers'
tokenizer at configure (what rendering the chat template for the cache key cost before). Prints
each run's wall time and CPU time (its own and its children's: less dependent on the load than
wall time on shared cores), the probe's answer, whether the verdicts equal the cold run's, the
medians and the CPU ratio, and the machine's load (``uptime``) before and after.

    python perf/cached_run.py [--warm 5] [--models ~/.cache/pytest-codeeval/models]

Target: a warm run under 3 s wall on two cores, importing neither torch nor transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["-m", "pytest", "benchmarks/humaneval", "-k", "HumanEval_0", "-p", "no:cacheprovider", "-q"]
EMBEDDED_NAME = "SmolLM2-135M-Instruct"  # the converted model's folder under <cache>/models
PROBE = '''
import json, os, sys

def pytest_configure(config):
    # the reference rows: what the cache key cost before, transformers' tokenizer read to render
    # the chat template (torch imported with it)
    if os.environ.get("CACHED_RUN_HEAVY"):
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(os.environ["CACHED_RUN_HEAVY"])

def pytest_sessionfinish(session):
    with open(os.environ["CACHED_RUN_PROBE"], "w") as f:
        json.dump({m: m in sys.modules for m in ("torch", "transformers")}, f)
'''


def run_once(env: dict[str, str], probe_file: Path) -> tuple[float, float, dict[str, bool], str, int]:
    """One pytest subprocess: (wall seconds, CPU seconds of it and its children, heavy modules
    imported, last line, exit code)."""
    probe_file.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *COMMAND, "-p", "cached_run_probe"], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    imported = json.loads(probe_file.read_text()) if probe_file.exists() else {}
    return wall, cpu, imported, lines[-1] if lines else done.stderr.strip()[-200:], done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5, help="fully cached runs to time (default 5)")
    parser.add_argument("--models", type=Path, default=None,
                        help="a cache's models/ folder holding the converted embedded model (saves its conversion)")
    args = parser.parse_args()
    if "CODEEVAL_DATA" not in os.environ:
        sys.exit("set CODEEVAL_DATA to the benchmark data folder")
    with tempfile.TemporaryDirectory(prefix="cached-run-") as tmp:
        root = Path(tmp)
        (root / "probe").mkdir()
        (root / "probe" / "cached_run_probe.py").write_text(PROBE)
        cache = root / "cache"
        cache.mkdir()
        if args.models is not None:
            (cache / "models").symlink_to(args.models.expanduser().resolve())
        probe_file = root / "probe.json"
        env = dict(os.environ, CODEEVAL_CACHE=str(cache), CACHED_RUN_PROBE=str(probe_file), HF_HUB_OFFLINE="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(root / "probe"), os.environ.get("PYTHONPATH")])))
        print(f"command: python {' '.join(COMMAND)}  (in {REPO}, a fresh CODEEVAL_CACHE)")
        print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
        wall, cpu, imported, last, rc = run_once(env, probe_file)
        print(f"cold      {wall:6.2f} s wall {cpu:6.2f} s CPU  exit {rc}  imported {imported}  | {last}")
        heavy_env = dict(env, CACHED_RUN_HEAVY=str(cache / "models" / EMBEDDED_NAME))
        rows: dict[str, list[tuple[float, float]]] = {"warm": [], "reference": []}
        for i in range(args.warm):  # alternated, so both see the same load
            for label, run_env in (("warm", env), ("reference", heavy_env)):
                wall, cpu, imported, this_last, rc = run_once(run_env, probe_file)
                rows[label].append((wall, cpu))
                same = "same verdicts" if this_last.split(" in ")[0] == last.split(" in ")[0] else "VERDICTS DIFFER"
                print(f"{label:9} {wall:6.2f} s wall {cpu:6.2f} s CPU  exit {rc}  imported {imported}  {same}")
        for label, measured in rows.items():
            walls, cpus = [w for w, _ in measured], [c for _, c in measured]
            print(f"{label:9} median {statistics.median(walls):.2f} s wall (min {min(walls):.2f}), "
                  f"{statistics.median(cpus):.2f} s CPU")
        ratio = statistics.median(c for _, c in rows["reference"]) / statistics.median(c for _, c in rows["warm"])
        print(f"reference = warm + transformers' tokenizer read at configure (what the cache key cost before): "
              f"{ratio:.1f}x the warm run's CPU; target: a warm run under 3 s wall on two idle cores")
        print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
