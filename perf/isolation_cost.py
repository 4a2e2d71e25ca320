"""Per-sample cost of the sandbox v2 primitives, measured where they run (root only).

Builds the fork server's layout (``isolation.enter``: PID 1 of new namespaces, ``/``
read-only; a zygote in ``fsroot.enter_root``'s allow-list root) and, in the zygote, times a
bare fork + exit + wait against the same with each primitive added: ``fsroot.enter_sample``
(and its parts), a cgroup per sample (make, join, remove), ``wipe_scratch``. Variants are
interleaved round by round and the median round is printed, because the machine is shared.

    python perf/isolation_cost.py [--n 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_codeeval.sandbox import cgroups, fsroot, isolation, proc  # noqa: E402

libc = ctypes.CDLL(None, use_errno=True)


def cpu_now() -> float:
    self, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self.ru_utime + self.ru_stime + children.ru_utime + children.ru_stime


def per_sample(n: int, in_child: Callable[[], None] | None,
               around: Callable[[], Callable[[], None]] | None) -> tuple[float, float]:
    """Mean ms of fork + in_child() + exit + wait (+ around()'s setup and teardown): elapsed,
    and CPU time of this process and the children together (what a busy machine feels)."""
    start, cpu = time.perf_counter(), cpu_now()
    for _ in range(n):
        done = around() if around else None
        pid = os.fork()
        if pid == 0:
            if in_child:
                in_child()
            os._exit(0)
        os.waitpid(pid, 0)
        if done:
            done()
    return (time.perf_counter() - start) / n * 1e3, (cpu_now() - cpu) / n * 1e3


def zygote(n: int, rounds: int, base: str, groups: cgroups.Cgroups | None) -> None:
    slot = f"{base}/slot"
    os.mkdir(slot)
    fsroot.make_scratch(slot, 64 << 20, 10_000, 1_700_000_007)
    holder: dict[str, cgroups.SampleGroup] = {}

    def make() -> Callable[[], None]:
        holder["g"] = groups.make("s", pids_max=64, memory_bytes=256 << 20)
        return holder["g"].remove

    def recycle() -> Callable[[], None]:
        if "slot" not in holder:
            holder["slot"] = groups.make("slot", pids_max=64, memory_bytes=256 << 20)
        holder["g"] = holder["slot"]
        return holder["slot"].recycle

    def binds_only() -> None:
        libc.unshare(isolation.CLONE_NEWNS)
        fsroot._mount(slot, "/tmp", None, isolation.MS_BIND)
        fsroot._mount("/tmp", "/dev/shm", None, isolation.MS_BIND)

    variants: dict[str, tuple] = {
        "fork + exit + wait": (None, None),
        "+ unshare(NEWNS)": (lambda: libc.unshare(isolation.CLONE_NEWNS), None),
        "+ unshare(NEWIPC)": (lambda: libc.unshare(isolation.CLONE_NEWIPC), None),
        "+ unshare(NEWNS) and 2 binds": (binds_only, None),
        "+ enter_sample (all)": (lambda: fsroot.enter_sample(slot), None),
    }
    if groups is not None:
        variants["+ cgroup make/join/remove"] = (lambda: holder["g"].join(), make)
        variants["+ cgroup per slot (join, recycle)"] = (lambda: holder["g"].join(), recycle)
        variants["+ enter_sample + cgroup"] = (lambda: (fsroot.enter_sample(slot), holder["g"].join()), make)
        variants["+ enter_sample + cgroup per slot"] = (lambda: (fsroot.enter_sample(slot), holder["g"].join()), recycle)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    wipes: list[float] = []
    for _ in range(rounds):
        for name, (in_child, around) in variants.items():
            results[name].append(per_sample(n, in_child, around))
        start = time.perf_counter()
        for _ in range(n):
            fsroot.wipe_scratch(slot, 64 << 20, 10_000, 1_700_000_007)
        wipes.append((time.perf_counter() - start) / n * 1e3)
    base_ms, base_cpu = (statistics.median(v) for v in zip(*results["fork + exit + wait"]))
    print(f"{'per sample (median of rounds)':36s} {'elapsed':>9s} {'added':>9s} {'CPU':>9s} {'added':>9s}")
    for name, values in results.items():
        ms, cpu = (statistics.median(v) for v in zip(*values))
        print(f"{name:36s} {ms:6.3f} ms {ms - base_ms:+6.3f} ms {cpu:6.3f} ms {cpu - base_cpu:+6.3f} ms")
    print(f"{'wipe_scratch, empty':36s} {statistics.median(wipes):7.3f} ms")
    for files in (1_000, 5_000):
        for i in range(files):
            with open(f"{slot}/f{i}", "wb") as f:
                f.write(b"x" * 1024)
        start = time.perf_counter()
        fsroot.wipe_scratch(slot, 64 << 20, 10_000, 1_700_000_007)
        print(f"{f'wipe_scratch, {files:,} files of 1 KiB':36s} {(time.perf_counter() - start) * 1e3:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, Linux {os.uname().release}")
    base = tempfile.mkdtemp(prefix="codeeval-cost-")
    groups = cgroups.probe()
    if groups is None:
        print(f"cgroups: unavailable ({cgroups.probe_reason()})")
    else:
        print(f"cgroups: {groups.describe()}")
    sys.stdout.flush()
    try:
        pid = os.fork()
        if pid == 0:
            isolation.enter("namespaces", base)
            z = os.fork()
            if z == 0:
                fsroot.enter_root(*fsroot.default_read_only(), [base])
                zygote(args.n, args.rounds, base, groups)
                sys.stdout.flush()
                os._exit(0)
            _, status = os.waitpid(z, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        os.waitpid(pid, 0)
    finally:
        if groups is not None:
            groups.close()
        proc.force_rmtree(base)


if __name__ == "__main__":
    main()
