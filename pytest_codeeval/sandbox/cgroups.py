"""A control group per sample where the kernel allows it: accounting and killing no fork escapes.

A double fork leaves the sample's process tree (its orphan's CPU time is never counted) and a
fork flood outruns any /proc scan; a cgroup holds every descendant. Layout: a parent group
``codeeval-<pid>-<random>`` per fork server, nested in the server's own group of each hierarchy
(from /proc/self/cgroup, so a container's limits still apply), one group per sample (or per
worker slot, :meth:`SampleGroup.recycle`) inside. Hierarchies: cgroup v2 (``cpu.stat``,
``cgroup.kill``, ``cgroup.events``; ``pids``/``memory`` where v2 has those controllers), else
v1 ``pids`` and ``memory``, and v1 ``cpuacct`` for the CPU time when there is no v2.

Descriptors, not paths: the server remounts ``/`` read-only and the zygote pivots into a root
without ``/sys``. :func:`probe` opens each hierarchy as a *detached, writable clone* of the
server's own cgroup directory (``open_tree(OPEN_TREE_CLONE)`` + ``mount_setattr``): no later
remount of ``/`` touches it, it survives ``pivot_root``, and its ``..`` stops at its own top (a
plain descriptor opened on the host leads, through ``..``, back to the whole host filesystem).
So ``probe`` works before or after the read-only remount, but must run before ``pivot_root``.
The sample joins its group itself, as root, then the harness closes every descriptor above its
pipes: samples keep none of these.

Fallback, when :func:`probe` returns None (not root and no delegated group, a read-only or
missing hierarchy: :func:`probe_reason` says which): the supervisor's process-tree accounting
and its subreaper kill rounds (``proc.kill_and_reap_children``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import signal
import time

from pytest_codeeval.sandbox.isolation import AT_RECURSIVE, MOUNT_ATTR_RDONLY, SYS_MOUNT_SETATTR, _libc, _MountAttr

_SYS_OPEN_TREE, _OPEN_TREE_CLONE, _AT_EMPTY_PATH = 428, 1, 0x1000  # open_tree: the same number everywhere
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_reason = "not probed"


class CgroupError(OSError):
    pass


def probe() -> Cgroups | None:
    """The server's cgroups, or None (see :func:`probe_reason`) where they cannot be had."""
    global _reason
    try:
        groups = Cgroups()
    except OSError as e:
        _reason = str(e)
        return None
    _reason = ""
    return groups


def probe_reason() -> str:
    """Why the last :func:`probe` returned None ("" when it did not)."""
    return _reason


class _Hierarchy:
    def __init__(self, kind: str, path: str, fd: int) -> None:
        self.kind, self.path, self.fd = kind, path, fd  # kind: v2, pids, memory or cpuacct
        self.controllers: set[str] = set()  # v2 only: pids and/or memory, where available
        self.has_kill = False  # v2 only: cgroup.kill (Linux 5.14)


class Cgroups:
    """The per-server parent group, in every hierarchy worth using."""

    def __init__(self) -> None:
        self.name = f"codeeval-{os.getpid()}-{secrets.token_hex(4)}"
        self.hierarchies: list[_Hierarchy] = []
        self.problems: list[str] = []
        own, mounts = _own_groups(), _cgroup_mounts()
        v2 = self._add("v2", own, mounts) if "" in mounts else None
        for controller in ("pids", "memory"):
            if controller in mounts and not (v2 and controller in v2.controllers):
                self._add(controller, own, mounts)
        if v2 is None and "cpuacct" in mounts:
            self._add("cpuacct", own, mounts)
        if not self.hierarchies:
            reasons = "; ".join(self.problems) or "none mounted"
            raise CgroupError(errno.ENOENT, f"no usable cgroup hierarchy: {reasons}")

    def _add(self, kind: str, own: dict[str, str], mounts: dict[str, tuple[str, str]]) -> _Hierarchy | None:
        key = "" if kind == "v2" else kind
        mount_root, mount_point = mounts[key]
        group = own.get(key, "/")
        rel = group[len(mount_root):].strip("/") if group.startswith(mount_root) else ""
        path = f"{mount_point}/{rel}" if rel else mount_point
        try:
            fd = _open_writable(path)
            try:
                os.mkdir(self.name, 0o755, dir_fd=fd)
                h = _Hierarchy(kind, path, fd)
                if kind == "v2":  # the controllers our own group passes down to its children
                    h.controllers = set(_read(fd, f"{self.name}/cgroup.controllers").split()) & {"pids", "memory"}
                    if h.controllers:
                        _write(fd, f"{self.name}/cgroup.subtree_control", " ".join("+" + c for c in h.controllers))
                    h.has_kill = _exists(fd, f"{self.name}/cgroup.kill")
            except BaseException:
                try:
                    os.rmdir(self.name, dir_fd=fd)
                except OSError:
                    pass
                os.close(fd)
                raise
        except OSError as e:
            self.problems.append(f"{kind} at {path}: {_explain(e)}")
            return None
        self.hierarchies.append(h)
        return h

    def describe(self) -> dict[str, str]:
        """What is in force, for the run's summary."""
        kinds = {h.kind: h for h in self.hierarchies}
        v2 = kinds.get("v2")
        return {"cgroups": ", ".join(f"{h.kind} {h.path}/{self.name}" for h in self.hierarchies),
                "cpu": "v2 cpu.stat" if v2 else "v1 cpuacct.usage" if "cpuacct" in kinds else "none",
                "kill": "cgroup.kill" if v2 and v2.has_kill else "signals, in rounds",
                "pids": "v2" if v2 and "pids" in v2.controllers else "v1" if "pids" in kinds else "none",
                "memory": "v2" if v2 and "memory" in v2.controllers else "v1" if "memory" in kinds else "none"}

    def make(self, name: str, pids_max: int, memory_bytes: int | None) -> SampleGroup:
        """A fresh group (a stale one of the same name is removed first). Raises CgroupError."""
        group, path = SampleGroup([], name, self.name), f"{self.name}/{name}"
        try:
            for h in self.hierarchies:
                try:
                    os.mkdir(path, 0o755, dir_fd=h.fd)
                except FileExistsError:
                    SampleGroup([(h, os.open(path, _DIR, dir_fd=h.fd))], name, self.name).remove()
                    os.mkdir(path, 0o755, dir_fd=h.fd)
                fd = os.open(path, _DIR, dir_fd=h.fd)
                group.fds.append((h, fd))
                if h.kind == "pids" or "pids" in h.controllers:
                    _write(fd, "pids.max", str(pids_max))
                if memory_bytes is not None and h.kind == "memory":
                    _write(fd, "memory.limit_in_bytes", str(memory_bytes))
                    if _exists(fd, "memory.memsw.limit_in_bytes"):  # swap is no way around the limit
                        _write(fd, "memory.memsw.limit_in_bytes", str(memory_bytes))
                elif memory_bytes is not None and "memory" in h.controllers:
                    _write(fd, "memory.max", str(memory_bytes))
                    if _exists(fd, "memory.swap.max"):
                        _write(fd, "memory.swap.max", "0")
        except OSError as e:
            group.remove()
            raise CgroupError(e.errno or errno.EIO, f"cgroup {name}: {_explain(e)}") from e
        return group

    def close(self) -> None:
        """Remove every group left and the parent group. Never raises."""
        for h in self.hierarchies:
            try:
                parent = os.open(self.name, _DIR, dir_fd=h.fd)
                try:
                    names = [e.name for e in os.scandir(parent) if e.is_dir(follow_symlinks=False)]
                finally:
                    os.close(parent)
                for name in names:
                    SampleGroup([(h, os.open(f"{self.name}/{name}", _DIR, dir_fd=h.fd))], name, self.name).remove()
                os.rmdir(self.name, dir_fd=h.fd)
            except OSError:
                pass
            os.close(h.fd)
        self.hierarchies = []


class SampleGroup:
    """One sample's (or one slot's) group in each hierarchy, as directory descriptors."""

    def __init__(self, fds: list[tuple[_Hierarchy, int]], name: str, parent: str) -> None:
        self.fds, self.name, self._parent = fds, name, parent
        self._base_cpu, self._base_oom = 0.0, 0  # the counters at the last recycle()

    def join(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the calling process) into the group in every hierarchy. The sample
        calls this itself, as root, before dropping its privileges; its children follow it."""
        for _, fd in self.fds:
            _write(fd, "cgroup.procs", str(pid))

    def cpu_seconds(self) -> float:
        """CPU time of everything that ran in the group since it was made or recycled, orphans
        included (0.0 where no hierarchy counts it)."""
        return self._cpu() - self._base_cpu

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for going over its memory limit."""
        return self._oom_kills() > self._base_oom

    def memory_bytes(self) -> int | None:
        """Memory charged to the group now (None where no hierarchy counts it)."""
        for h, fd in self.fds:
            name = "memory.usage_in_bytes" if h.kind == "memory" else "memory.current" if "memory" in h.controllers else ""
            if name:
                try:
                    return int(_read(fd, name))
                except (OSError, ValueError):
                    pass
        return None

    def settle(self, baseline: int, deadline_s: float = 2.0) -> bool:
        """Wait (up to ``deadline_s``) until the memory charged to the group is back near
        ``baseline``: what an ended sample pinned (its IPC namespace's shared memory, freed by
        the kernel a moment after its last process) must not count against the next one."""
        end = time.monotonic() + deadline_s
        pause = 0.0005
        while True:
            now = self.memory_bytes()
            if now is None or now <= baseline + (8 << 20):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def mark(self) -> None:
        """Count CPU time and OOM kills from zero again, killing nothing: for a supervisor that
        lives in its slot's group and forks each sample there (a fork inherits the group at no
        cost; moving a process into one waits for an RCU grace period per hierarchy)."""
        self._base_cpu, self._base_oom = self._cpu(), self._oom_kills()

    def kill(self) -> None:
        """SIGKILL everything in the group: cgroup.kill where the kernel has it (one atomic
        write), else rounds of signals until cgroup.procs is empty (bounded). Never raises."""
        for h, fd in self.fds:
            try:
                if h.has_kill:
                    return _write(fd, "cgroup.kill", "1")
            except OSError:
                pass
        for _ in range(100):  # pids.max bounds a fork flood, so a few rounds catch it all
            pids = self._pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not pids:
                return

    def populated(self) -> bool:
        """Whether any process (zombies aside) is still in the group."""
        for h, fd in self.fds:
            if h.kind == "v2":
                try:
                    return "populated 1" in _read(fd, "cgroup.events")
                except OSError:
                    pass
        return bool(self._pids())

    def recycle(self, deadline_s: float = 2.0) -> bool:
        """Ready a slot's group for its next sample: kill what is left, wait until it is empty,
        count CPU time and OOM kills from zero again. False when something would not die (then
        remove it and make another). Cheaper than make + remove: no mkdir, no rmdir."""
        empty = self._empty(time.monotonic() + deadline_s)
        self._base_cpu, self._base_oom = self._cpu(), self._oom_kills()
        return empty

    def remove(self, deadline_s: float = 2.0) -> bool:
        """Kill, wait for the group to empty (up to ``deadline_s``), remove it everywhere and
        close its descriptors. True when it is gone. Never raises."""
        end = time.monotonic() + deadline_s
        self._empty(end)
        gone = True
        for h, fd in self.fds:
            os.close(fd)
            while True:
                try:
                    os.rmdir(f"{self._parent}/{self.name}", dir_fd=h.fd)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:  # EBUSY: a task still on its way out
                    if e.errno != errno.EBUSY or time.monotonic() >= end:
                        gone = False
                        break
                    time.sleep(0.001)
        self.fds = []
        return gone

    def _empty(self, end: float) -> bool:
        self.kill()
        pause = 0.0001
        while self.populated():
            if time.monotonic() >= end:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.01)
            self.kill()
        return True

    def _pids(self) -> set[int]:
        pids: set[int] = set()
        for _, fd in self.fds:
            try:  # pids outside our PID namespace read as nothing (or 0)
                pids.update(int(p) for p in _read(fd, "cgroup.procs").split() if p != "0")
            except (OSError, ValueError):
                pass
        return pids

    def _cpu(self) -> float:
        for h, fd in self.fds:
            try:
                if h.kind == "v2":
                    return int(_read(fd, "cpu.stat").split("usage_usec ", 1)[1].split()[0]) / 1e6
                if h.kind == "cpuacct":
                    return int(_read(fd, "cpuacct.usage")) / 1e9
            except (OSError, IndexError, ValueError):
                pass
        return 0.0

    def _oom_kills(self) -> int:
        kills = 0
        for h, fd in self.fds:
            name = "memory.oom_control" if h.kind == "memory" else "memory.events" if "memory" in h.controllers else ""
            try:
                for line in _read(fd, name).splitlines() if name else ():
                    key, _, value = line.partition(" ")
                    kills += int(value) if key == "oom_kill" else 0
            except (OSError, ValueError):
                pass
        return kills


def _open_writable(path: str) -> int:
    """A detached, writable clone of the mount at ``path`` (see the module's docstring); a plain
    directory descriptor where the kernel has no open_tree (before Linux 5.2)."""
    fd = _libc.syscall(_SYS_OPEN_TREE, -100, path.encode(), _OPEN_TREE_CLONE | os.O_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
            raise OSError(err, os.strerror(err), path)
        return os.open(path, _DIR)
    attr = _MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    _libc.syscall(SYS_MOUNT_SETATTR, fd, b"", _AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))
    return fd


def _own_groups() -> dict[str, str]:
    """This process's group per hierarchy: "" for v2, else each v1 controller's name."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                own[c] = path
    return own


def _cgroup_mounts() -> dict[str, tuple[str, str]]:
    """Controller ("" for v2) -> (root of the mounted subtree, mount point); first mount wins."""
    mounts: dict[str, tuple[str, str]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, (fstype, _, options) = left.split(), right.split()[:3]
            root, point = (_unescape(x) for x in fields[3:5])
            for c in [""] if fstype == "cgroup2" else options.split(",") if fstype == "cgroup" else []:
                mounts.setdefault(c, (root, point))
    return mounts


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _explain(e: OSError) -> str:
    if e.errno == errno.EROFS:
        return "read-only (open the cgroups before pivot_root, with a kernel that has open_tree)"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "not permitted (needs root, or a group delegated to this user)"
    return e.strerror or str(e)


def _read(dir_fd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _write(dir_fd: int, name: str, text: str) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd)
        return True
    except OSError:
        return False
