"""Linux process plumbing: prctl flags, killing whole trees, removing hostile directories."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import stat
from typing import Callable

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


def fork_peer(run: Callable[[socket.socket], None]) -> tuple[int, socket.socket]:
    """Fork a child that runs ``run`` with its end of a new SOCK_SEQPACKET socket pair, then
    exits (status 1 if ``run`` raised); -> (its pid, our end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()
            run(theirs)
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    return pid, ours


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
    """Remove a tree a hostile sample left behind; never raises, never recurses.

    Deep chains (100,000 levels), directories of mode 0o000, symlinks (removed, never followed),
    FIFOs and sockets are all removed. Every operation is relative to a directory descriptor
    opened with O_NOFOLLOW, so a rename race cannot redirect it outside the tree. At most
    ``_RMTREE_MAX_FDS`` descriptors are open at once: a directory deeper than that is first moved
    (renamed) to the top of the tree and removed from there, which keeps the work linear in the
    number of entries. The work is bounded by ``_RMTREE_BUDGET`` operations, so a process still
    writing into the tree cannot keep this running forever; what is left then stays.
    """
    try:
        _rmtree(os.path.abspath(path))
    except Exception:  # noqa: BLE001 - cleanup must not take the caller down; what stays, stays
        pass


_RMTREE_MAX_FDS = 64
_RMTREE_BUDGET = 20_000_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _rmtree(path: str) -> None:
    parent = os.open(os.path.dirname(path) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    # frames: [descriptor, name in the parent frame, subdirectories still to remove, rescans]
    frames: list[list] = [[parent, os.path.basename(path), [], 0]]
    budget = _RMTREE_BUDGET
    moved = 0
    try:
        if not _unlink_unless_dir(parent, frames[0][1]):
            return
        frames[0][2].append(frames[0][1])
        while frames and budget > 0:
            frame = frames[-1]
            fd, _, pending, _ = frame
            if pending:
                name = pending.pop()
                budget -= 1
                if len(frames) >= _RMTREE_MAX_FDS:
                    # too deep to hold one more descriptor: move the directory to the tree's top
                    # (frames[1]) under a fresh name, to be removed from there later
                    for _ in range(8):  # a name the sample left there may be in the way
                        moved += 1
                        target = f".force_rmtree-{moved}"
                        try:
                            os.rename(name, target, src_dir_fd=fd, dst_dir_fd=frames[1][0])
                        except OSError as e:
                            if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                                continue
                        else:
                            frames[1][2].append(target)
                        break
                    continue
                child = _open_dir(fd, name)
                if child is not None:
                    frames.append([child, name, [], 0])
                    budget -= _scan(child, frames[-1][2])
                continue
            if len(frames) == 1:
                break  # the tree's own directory is gone (or could not be removed)
            frames.pop()
            try:
                os.rmdir(frame[1], dir_fd=frames[-1][0])
            except OSError as e:
                if e.errno == errno.ENOTEMPTY and frame[3] < 2:
                    # something appeared meanwhile (a process still writing): look once more
                    frame[3] += 1
                    frames.append(frame)
                    budget -= _scan(fd, pending)
                    continue
            os.close(fd)
    finally:
        for frame in frames:
            os.close(frame[0])


def _unlink_unless_dir(dir_fd: int, name: str) -> bool:
    """Unlink ``name`` unless it is a directory (a symlink to one is unlinked). True: a directory."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return False
    except IsADirectoryError:
        return True
    except PermissionError:  # EPERM: also what some filesystems say for a directory
        try:
            return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            return False
    except OSError:
        return False


def _open_dir(dir_fd: int, name: str) -> int | None:
    """Open a subdirectory without following a symlink, making it readable and writable to us
    first if its mode says otherwise (a sample's chmod 000; root needs no such fix)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        try:  # an O_PATH descriptor needs no permission; chmod goes through /proc, no symlink
            handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                os.chmod(f"/proc/self/fd/{handle}", stat.S_IRWXU)
            finally:
                os.close(handle)
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
    except OSError:
        return None
    try:
        if os.geteuid() != 0 and os.fstat(fd).st_mode & stat.S_IRWXU != stat.S_IRWXU:
            os.fchmod(fd, stat.S_IRWXU)
    except OSError:
        pass
    return fd


def _scan(fd: int, subdirs: list[str]) -> int:
    """Unlink everything in the directory but its subdirectories, which go to ``subdirs``.
    Returns the number of entries seen (the work done)."""
    seen = 0
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                seen += 1
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir or _unlink_unless_dir(fd, entry.name):
                    subdirs.append(entry.name)
    except OSError:
        pass
    return seen
