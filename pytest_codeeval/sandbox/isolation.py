"""Isolation the fork server puts around every sample, strongest first, degrading gracefully.

``namespaces`` (the default where the kernel allows it, as root or through a user namespace):
the server moves itself into fresh PID, network, mount, IPC and UTS namespaces before serving.
Samples then see no network at all (only a loopback that is down), no process outside the
sandbox (a private /proc), and a filesystem that is read-only except the sandbox's own temporary
directory. The server is PID 1 there: when it dies, the kernel kills everything in it.

``fork``: processes only (sessions, rlimits, a subreaper that kills leftovers).

``bwrap`` (asked for by name; needs bubblewrap installed): every sample is a fresh interpreter
started by ``bwrap --unshare-all`` with a read-only root and its directory writable, in
namespaces of its own. Slower (an exec per sample) but independent of this module's mounts.

In both, a server running as root runs each sample as its own unprivileged uid (one per worker
slot), so a sample can write none of the run's files, signal no process of the run, and hits
RLIMIT_NPROC; an unprivileged server's samples drop every capability instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
from typing import Any

from pytest_codeeval.sandbox import proc

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_RDONLY = 1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added in Linux 5.12)
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY = 0x1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
CAP_DAC_READ_SEARCH = 2
# Samples of a root server run as SANDBOX_UID + worker slot: far above any real account.
SANDBOX_UID = 1_700_000_000
MODES = ("auto", "namespaces", "fork", "bwrap")

_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class IsolationError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise IsolationError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                       ctypes.c_ulong(flags), None), f"mount {target}")


def _set_read_only(path: str, read_only: bool) -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY if read_only else 0, 0 if read_only else MOUNT_ATTR_RDONLY, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE, ctypes.byref(attr),
                         ctypes.sizeof(attr)), f"mount_setattr {path}")


def enter(mode: str, writable: str) -> dict[str, Any]:
    """Called once by the fork server before it serves. Returns what is in force.

    In ``namespaces`` mode this process forks: the parent stays outside as a proxy that only
    waits (and exits with the server's status), the child returns here as PID 1 of the new
    namespaces and goes on to serve. ``auto`` falls back to ``fork`` when namespaces are refused.
    """
    uid = os.geteuid()
    level: dict[str, Any] = {
        "landlock": landlock_scopes() or "not available (needs Linux 6.12)",
        "mode": "fork",
        "uid_per_sample": uid == 0,
        "capabilities": "CAP_DAC_READ_SEARCH only" if uid == 0 else "none",
        "read_search": uid == 0,  # fork mode: samples see the host's files (a Python under /root)
    }
    if mode == "fork":
        return level
    if mode == "bwrap":
        path = shutil.which("bwrap")
        if path is None:
            raise IsolationError(errno.ENOENT, "bubblewrap (bwrap) is not installed")
        return {"mode": "bwrap", "bwrap": path, "uid_per_sample": False, "capabilities": "none",
                "namespaces": "per sample, by bwrap --unshare-all (user when possible, pid, net, ipc, "
                              "uts, cgroup)", "read_only_root": True,
                "network": "none (a fresh network namespace: only its own loopback)"}
    try:
        _unshare(uid)
    except IsolationError as e:
        if mode == "namespaces":
            raise
        level["namespaces_refused"] = str(e)
        return level
    child = os.fork()
    if child:
        _proxy(child)  # never returns
    proc.die_with_parent()
    try:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do here leaks to the host
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this namespace's pids
        _mount(writable, writable, None, MS_BIND | MS_REC)  # its own mount, to stay writable
        _set_read_only("/", True)
        _set_read_only(writable, False)
    except IsolationError as e:
        if mode == "namespaces":
            raise
        level["read_only_root"] = f"not in force ({e})"
    else:
        level["read_only_root"] = True
    level.update(mode="namespaces", capabilities="none", read_search=False, namespaces=["pid", "net", "mount", "ipc", "uts"] + (["user"] if uid else []),
                 network="none (a fresh network namespace, loopback down)")
    # PID 1 ignores signals it has no handler for: a sample cannot kill the server
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    return level


def _unshare(uid: int) -> None:
    gid = os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if uid != 0:
        flags |= CLONE_NEWUSER
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")
    if uid != 0:  # map ourselves to root inside, so that we may mount
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def _proxy(child: int) -> None:
    """Outside the namespaces: hold no pipe (their EOF must mean the server's death) and wait."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 1)


def drop_privileges(slot_uid: int | None, across_exec: bool = False, read_search: bool = False) -> None:
    """In the sample, before its code runs: become an unprivileged uid (root servers), or at
    least lose every capability, and never gain any back through exec.

    ``read_search`` (``fork`` mode as root only, where the sample sees the host's filesystem):
    keep CAP_DAC_READ_SEARCH, so that modules under a root-only directory (a pyenv Python in
    /root) still import; ``across_exec`` keeps it through the exec of a compiler or runtime, as
    an ambient capability. In ``namespaces`` mode the allow-list root makes every path a sample
    needs readable, and samples keep no capability at all."""
    keep = 1 << CAP_DAC_READ_SEARCH if read_search else 0
    if slot_uid is not None:
        os.setgroups([])
        os.setresgid(slot_uid, slot_uid, slot_uid)
        if keep:
            _libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setresuid(slot_uid, slot_uid, slot_uid)
        _set_capabilities(keep, inheritable=bool(keep) and across_exec)
        if keep and across_exec:
            _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0)
    else:
        _set_capabilities(0)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    restrict_scopes()


SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_RESTRICT_SELF = 444, 446  # the same on every architecture
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, LANDLOCK_SCOPE_SIGNAL = 1, 2  # Landlock ABI 6 (Linux 6.12)


class _LandlockRulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


def landlock_scopes() -> str:
    """What :func:`restrict_scopes` will do on this kernel, in words ("" when it cannot)."""
    abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 6:
        return ""
    return "abstract UNIX sockets and signals scoped to the sample (Landlock ABI %d)" % abi


_SCOPES = _LandlockRulesetAttr(0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL)


def prepare() -> None:
    """In a process that forks samples, once: look up the C functions :func:`drop_privileges`
    calls and make one of each argument structure, so that no forked sample builds them (ctypes
    caches both in this process's memory; each sample building them wrote ~90 pages)."""
    for name in ("prctl", "capset", "syscall"):
        getattr(_libc, name)
    _CapHeader(0x20080522, 0)
    (_CapData * 2)()
    ctypes.byref(_SCOPES)
    ctypes.sizeof(_SCOPES)


def restrict_scopes() -> bool:
    """In the sample, after no_new_privs: a Landlock domain of its own in which it can neither
    connect to an abstract UNIX socket nor signal a process created outside it (a neighbour
    sample in the same network namespace, or of the same uid). False where the kernel has no
    Landlock scoping (before Linux 6.12); then uids and namespaces are the only fences."""
    attr = _SCOPES
    fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if fd < 0:
        return False
    try:
        return _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0) == 0
    finally:
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _set_capabilities(mask: int, inheritable: bool = False) -> None:
    """Keep only the capabilities in ``mask`` (effective and permitted; inheritable too when
    asked, which an ambient capability needs)."""
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = mask >> 32
    if inheritable:
        data[0].inheritable, data[1].inheritable = mask & 0xFFFFFFFF, mask >> 32
    _check(_libc.capset(ctypes.byref(header), data), "capset")
