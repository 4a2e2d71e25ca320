"""Run a command and measure its whole process tree: wall time, CPU time and peak memory.

The perf scripts compare executors that spread their work over many processes (a fork server,
supervisors, compilers; a thread pool's subprocesses), so the memory of one process says little.
``run`` starts the command and samples ``/proc`` every ``interval`` seconds (50 ms) in a thread:
at each tick it sums the resident memory (RSS, ``/proc/PID/stat``) of every process descended
from this one, and with ``pss=True`` also the proportional set size (``/proc/PID/smaps_rollup``:
pages shared between forked processes counted once in all, so the sum is what the tree really
holds). The peaks of those sums are reported. A sampled peak can miss a process that lives
less than one interval; tmpfs files that are not mapped are not in either figure.

This script's process becomes a child subreaper while a command runs, so that processes the
command orphans stay in the tree (sampled, and reaped here: their CPU time is counted).
CPU time is user + system of every process reaped under the command (``RUSAGE_CHILDREN``).
The kernel here has no ``/proc/PID/task/TID/children``, so every tick reads each process's
``stat`` to find the tree (a hundred small reads: well under 1% of a core at 20 Hz).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")
PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Measured:
    """What ``run`` measured of one command's process tree."""

    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds
    cpu: float  # user + system seconds of every process reaped under the command
    peak_rss: int  # bytes: the largest sum of RSS over the tree seen at one tick
    peak_pss: int | None  # bytes, with pss=True
    peak_processes: int  # the most processes seen in the tree at one tick
    ticks: int
    leftovers: int  # processes still alive after the command exited (killed here)


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, rss pages) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), int(fields[21])


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree(root: int, exclude: frozenset[int] = frozenset()) -> dict[int, int]:
    """{pid: rss bytes} of every live descendant of ``root`` (``root`` and the subtrees of ``exclude`` left out)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parent[int(name)], rss[int(name)] = st[0], st[1] * PAGE
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found and pid not in exclude:
            found[pid] = rss[pid]
            todo.extend(children.get(pid, ()))
    return found


class TreeSampler:
    """Samples the descendants of this process in a thread until stopped; keeps the peaks."""

    def __init__(self, interval: float = 0.05, pss: bool = False, exclude: frozenset[int] = frozenset()) -> None:
        self.interval, self.pss, self.exclude = interval, pss, exclude
        self.peak_rss, self.peak_pss, self.peak_processes, self.ticks = 0, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.sample(me)
            self._stop.wait(self.interval)

    def sample(self, root: int) -> None:
        """One tick: the sums over ``root``'s tree now, folded into the peaks."""
        procs = tree(root, self.exclude)
        self.ticks += 1
        self.peak_processes = max(self.peak_processes, len(procs))
        self.peak_rss = max(self.peak_rss, sum(procs.values()))
        if self.pss:
            self.peak_pss = max(self.peak_pss, sum(_pss(pid) for pid in procs))

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _set_subreaper(on: bool) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to init, and their CPU time is not counted


def _reap_orphans(exclude: frozenset[int]) -> int:
    """Reap what the command orphaned to us; kill (by pid) and count what still runs."""
    killed: set[int] = set()
    for _ in range(20):
        live = 0
        for pid in tree(os.getpid(), exclude):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)  # only our direct children can be reaped
            except ChildProcessError:
                continue
            if done == 0:
                live += 1
                if pid not in killed:  # an orphan of the measured command, still running
                    killed.add(pid)
                    os.kill(pid, signal.SIGKILL)
        if not live:
            break
        time.sleep(0.05)
    return len(killed)


def run(cmd: list[str], *, interval: float = 0.05, pss: bool = False, **popen: Any) -> Measured:
    """Run ``cmd`` to its end (stdout and stderr captured as text) and measure its tree.

    Run one command at a time: every new descendant of this process counts as the command's
    (those that ran before it started are left out, and left alone).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    earlier = frozenset(tree(os.getpid()))
    _set_subreaper(True)
    try:
        with TreeSampler(interval, pss, earlier) as sampler:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
            out, err = proc.communicate()
            wall = time.perf_counter() - started
        leftovers = _reap_orphans(earlier)
    finally:
        _set_subreaper(False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(proc.returncode, out, err, wall, cpu, sampler.peak_rss, sampler.peak_pss if pss else None,
                    sampler.peak_processes, sampler.ticks, leftovers)


def mib(n: int | None) -> str:
    """Bytes as MiB for a table, '-' for None."""
    return "-" if n is None else f"{n / 2**20:.0f}"
