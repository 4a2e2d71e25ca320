"""Where a Python sample's cost goes: CPU time, page faults and context switches per sample, by
role, through the Sandbox API (no pytest), on HumanEval's reference solutions x N.

A fork-per-sample sandbox pays mostly in the kernel: fork copies the supervisor's page tables,
every page a process writes of memory it shares with its parent or child is copied on its first
write (a minor fault, ~2-3 microseconds each on this VM), and exit tears the copy down. Faults
are counted by the kernel, so unlike times they do not change with the machine's load: compare
two trees of the package side by side with ``--root``.

    python perf/sample_faults.py [--n 10] [--workers 2] [--root DIR ...]

Prints, per tree: samples/s (wall, noisy), CPU ms per sample of the whole server tree, and
minor faults per sample of the slots' supervisors (their own: what they write after each fork),
of the samples (the supervisors' reaped children), of the judges and of the server.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import gzip, json, os, resource, sys, time
from collections import Counter
root, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, root)
from pytest_codeeval.benchmarks.humaneval import _packaged_file, problems_from_records
from pytest_codeeval.sandbox import Sandbox

with gzip.open(_packaged_file(), "rt") as f:
    records = [json.loads(line) for line in f]
problems = problems_from_records(records, "perf")
sb = Sandbox(workers)
sb.start()
started = time.perf_counter()
futures = []
for p, r in zip(problems, records):
    program, args = p.program_from_completion(r["canonical_solution"]), (p.check_stages(), p.timeout, p.data_path, p.language)
    kwargs = {"prelude": p.judge_prelude, "entry_point": p.entry_point, "label": p.task_id}
    if hasattr(sb, "submit_many"):
        futures += sb.submit_many([program] * n, *args, **kwargs)
    else:  # an older tree
        futures += [sb.submit(program, *args, **kwargs) for _ in range(n)]
results = [f.result() for f in futures]
wall = time.perf_counter() - started

def stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rfind(b")") + 2:].split()
    return int(fields[1]), int(fields[7]), int(fields[8])  # ppid, minflt, cminflt (reaped children)

table = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        try:
            table[int(name)] = stat(int(name))
        except OSError:
            pass
children = {}
for pid, (ppid, _, _) in table.items():
    children.setdefault(ppid, []).append(pid)
# the client's child is the namespaces' outer process (or the server itself in fork mode); the
# server is the first with several children: the zygote (whose children are the slots'
# supervisors, whose reaped children were the samples) and one judge per slot
faults = Counter()
server = sb.pid
while len(children.get(server, [])) == 1:
    faults["server and the rest"] += table[server][1]
    server = children[server][0]
faults["server and the rest"] += table[server][1]
for kid in children.get(server, []):
    if children.get(kid):  # the zygote
        faults["server and the rest"] += table[kid][1]
        for s in children[kid]:
            faults["supervisors (own)"] += table[s][1]
            faults["samples"] += table[s][2]
    else:
        faults["judges"] += table[kid][1]
sb.close()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
total = len(results)
print(json.dumps({"samples": total, "passed": sum(r.outcome.value == "passed" for r in results),
                  "per_second": total / wall, "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000 / total,
                  "faults": {k: v / total for k, v in faults.items()},
                  "all_faults": usage.ru_minflt / total,
                  "switches": (usage.ru_nvcsw + usage.ru_nivcsw) / total}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="samples per problem (default 10: 1,640 samples)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--root", action="append", help="a directory holding a pytest_codeeval package to measure "
                    "(repeat to compare, e.g. a `git archive REV pytest_codeeval` of an older revision); default: this one")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    roots = args.root or [str(REPO)]
    with open("/proc/loadavg") as f:
        print(f"load average {f.read().split()[0]}, {len(os.sched_getaffinity(0))} cores, workers={args.workers}, "
              f"{164 * args.n} samples (HumanEval reference x {args.n})")
    for round_ in range(1, args.rounds + 1):
        for root in roots:
            done = subprocess.run([sys.executable, "-c", CHILD, root, str(args.n), str(args.workers)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{root}: failed\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            split = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["faults"].items()))
            print(f"round {round_} {root}: {r['passed']}/{r['samples']} passed, {r['per_second']:.0f} samples/s, "
                  f"{r['cpu_ms']:.2f} CPU ms/sample; minor faults/sample {r['all_faults']:.0f} ({split}); "
                  f"context switches/sample {r['switches']:.1f}", flush=True)


if __name__ == "__main__":
    main()
