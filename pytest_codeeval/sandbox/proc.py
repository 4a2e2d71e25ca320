"""Linux process plumbing: prctl flags, killing whole trees, removing hostile directories."""

from __future__ import annotations

import ctypes
import errno
import os
import select
import shutil
import signal
import stat
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not glibc/Linux: the flags are a defence in depth only
    _prctl = None


def prctl(option: int, value: int) -> bool:
    if _prctl is None:
        return False
    return _prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent dies."""
    return prctl(_PR_SET_PDEATHSIG, sig)


def set_dumpable(dumpable: bool) -> bool:
    """A process that is not dumpable cannot be ptraced, nor its memory read through /proc, by
    another process of the same uid (a sample, in an unprivileged run)."""
    return prctl(_PR_SET_DUMPABLE, 1 if dumpable else 0)


def await_exit(pid: int, timeout: float) -> None:
    """Wait until ``pid`` (not necessarily our child) has exited; SIGKILL it after ``timeout``."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return  # gone already (or an old kernel: nothing to wait with)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def become_subreaper() -> bool:
    """Orphaned descendants get reparented to this process, so that it can kill them."""
    return prctl(_PR_SET_CHILD_SUBREAPER, 1)


def process_table() -> dict[int, tuple[int, int]]:
    """Every process in view: pid -> (parent pid, CPU clock ticks used, children's included)."""
    table: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: parse after the last ")". From
        # there, fields[0] is /proc's field 3 (state), ppid is field 4, utime..cstime 14-17
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 14:
            table[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return table


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    return [child for child, (ppid, _) in process_table().items() if ppid == pid]


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_and_reap_children(spare: frozenset[int] = frozenset(), rounds: int = 1000) -> int:
    """SIGKILL every child of this process except ``spare``, and reap them, until none is left.

    As a subreaper this process inherits the orphans of whatever it kills, so repeating until
    no child remains takes down double forks and setsid'd daemons as well. Returns how many
    processes were killed.
    """
    me = os.getpid()
    killed = 0
    if not spare:
        try:  # the common case, no child at all, costs one system call rather than a /proc scan
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
    for _ in range(rounds):
        victims = [pid for pid in children_of(me) if pid not in spare]
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for pid in victims:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


def force_rmtree(path: str) -> None:
    """Remove a tree a sample may have made hard to remove (read-only dirs, odd modes)."""

    def fix(func, p, exc_info):  # type: ignore[no-untyped-def]
        err = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if isinstance(err, FileNotFoundError):
            return
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=fix)
    else:
        shutil.rmtree(path, onerror=fix)
