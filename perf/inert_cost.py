"""What the installed plugin costs a suite that does not use it.

A team installs pytest-codeeval into a shared environment; every unrelated test run then loads
it. This runs one small, unrelated suite (plain tests, no codeeval option, no benchmark) three
ways, interleaved round by round because the machine is shared, and prints the median wall time
of each and their ratios, the processes each run started (children of pytest, counted from
/proc while it runs), the modules the plugin imported, and the header lines it printed:

- ``without``: ``-p no:codeeval`` (the plugin not loaded at all)
- ``dormant``: the plugin loaded, not asked (the default for an unrelated suite)
- ``asked``:   the same suite with a codeeval option given (``--codeeval-timeout=3``), which wakes
  the plugin: the header line and the sandbox it starts at collection are what dormancy saves

    python perf/inert_cost.py [--rounds 7] [--tests 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VARIANTS = {
    "without": ["-p", "no:codeeval"],
    "dormant": [],
    "asked": ["--codeeval-timeout=3"],
}
PROBE = """
import sys

def pytest_unconfigure(config):
    heavy = sorted(m for m in ("torch", "transformers", "numpy", "openai", "datasets", "tqdm", "rich")
                   if m in sys.modules)
    mine = sorted(m for m in sys.modules if m.startswith("pytest_codeeval"))
    with open("probe.txt", "w") as f:
        f.write(f"{len(mine)} {','.join(heavy) or '-'}\\n")
"""


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def run(suite: Path, extra: list[str]) -> tuple[float, int, str, list[str]]:
    """Wall seconds, processes seen below pytest, the probe's line, the header's codeeval lines."""
    seen: set[int] = set()
    start = time.perf_counter()
    # bytecode caching on, as for most users: without it pytest rewrites the asserts of every
    # plugin module (hypothesis's too) on every run, which would dwarf what is measured here
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra], cwd=suite,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    done = threading.Event()

    def watch() -> None:  # poll the process tree while pytest runs
        while not done.is_set():
            seen.update(descendants(proc.pid))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - start
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"pytest {' '.join(extra)} failed:\n{out[-2000:]}")
    header = [line for line in out.splitlines() if line.startswith("codeeval")]
    return elapsed, len(seen), (suite / "probe.txt").read_text().strip(), header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp)
        (suite / "conftest.py").write_text(PROBE)
        for i in range(args.tests):
            (suite / f"test_unrelated_{i}.py").write_text(f"def test_{i}():\n    assert sum(range({i})) >= 0\n")
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        facts: dict[str, tuple[int, str, list[str]]] = {}
        for name, extra in VARIANTS.items():  # a warm-up round, not counted: writes the caches
            run(suite, extra)
        for _ in range(args.rounds):
            for name, extra in VARIANTS.items():
                elapsed, processes, probe, header = run(suite, extra)
                times[name].append(elapsed)
                facts[name] = (processes, probe, header)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, {os.cpu_count()} cores; "
          f"{args.tests} plain tests, median of {args.rounds} interleaved rounds")
    base = statistics.median(times["without"])
    print(f"{'variant':<9} {'wall s':>7} {'ratio':>6} {'processes':>9}  plugin modules / heavy modules   header")
    for name in VARIANTS:
        median = statistics.median(times[name])
        processes, probe, header = facts[name]
        print(f"{name:<9} {median:7.3f} {median / base:6.3f} {processes:>9}  {probe:<32} {len(header)} line(s)")
    for name in VARIANTS:
        for line in facts[name][2]:
            print(f"  {name}: {line[:150]}")


if __name__ == "__main__":
    main()
