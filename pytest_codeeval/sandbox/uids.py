"""Host-wide unique blocks of sample uids, one block per fork server.

A root fork server runs every worker slot's samples as a uid of their own. Those uids must be
unique on the host, not just in one server: two servers (xdist workers, concurrent pytest runs)
handing out the same uid would let a sample of one overwrite the files of a concurrent sample of
the other, signal it, and use up its RLIMIT_NPROC. So each server takes a block of
``BLOCK_SIZE`` uids, ``FIRST_UID + BLOCK_SIZE * (index + 1)`` upwards, by locking the file
``block-<index>`` in a root-only directory (``/run/pytest-codeeval/uids/``, or
``/tmp/pytest-codeeval-uids-<euid>/`` where /run is not writable). Block 0 (the uids right
above ``FIRST_UID``) stays unused: older versions used ``FIRST_UID + slot`` in every server.

The lock is a POSIX record lock (``fcntl.lockf``), not ``flock``, on purpose. Samples are forked,
not executed, so they inherit the server's descriptors until they close them: a ``flock`` belongs
to the open file, and any process holding a copy of the descriptor could ``flock(fd, LOCK_UN)``
and hand the block to another server. A record lock belongs to the process that took it; a
forked child neither holds it nor can release it, and closing its copy does nothing. The kernel
releases it when the holder exits, however it dies (SIGKILL included), so a crashed server's
block is free again. The descriptor is O_CLOEXEC and must stay open in the process that called
:meth:`UidBlock.allocate` (the server, or the proxy parent that outlives it) for as long as the
uids are in use; that process must not open and close the lock file any other way, which would
drop its lock (POSIX semantics).

Allocate before the server makes ``/`` read-only (``isolation.enter``): creating or opening the
lock file for writing needs a writable ``/run`` or ``/tmp``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

FIRST_UID = 1_700_000_000
BLOCK_SIZE = 65_536
# uid_t is 32 bits and (uid_t)-1 means "unchanged": stay well below it
MAX_BLOCKS = (0xFFFF_FFFE - FIRST_UID) // BLOCK_SIZE - 1
LOCK_DIRS = ("/run/pytest-codeeval/uids", "/tmp/pytest-codeeval-uids-{euid}")

# blocks this process holds: a POSIX lock is per process, so locking a file it already holds
# would succeed a second time
_held: set[int] = set()


class UidBlockError(OSError):
    pass


class UidBlock:
    """``count`` consecutive uids nobody else on the host uses while this object holds them."""

    def __init__(self, index: int, count: int, fd: int, lock_path: str) -> None:
        self.index = index
        self.count = count
        self.first = FIRST_UID + BLOCK_SIZE * (index + 1)
        self.lock_path = lock_path
        self._fd: int | None = fd

    @classmethod
    def allocate(cls, count: int, lock_dir: str | None = None) -> UidBlock:
        """Take the lowest free block; raises UidBlockError when none is left or no safe lock
        directory can be had. ``lock_dir`` is for tests."""
        if not 0 < count <= BLOCK_SIZE:
            raise ValueError(f"a block holds 1 to {BLOCK_SIZE} uids, not {count}")
        directory = lock_dir or _lock_dir()
        if lock_dir:
            _check_dir(lock_dir)
        for index in range(MAX_BLOCKS):
            if index in _held:
                continue
            path = os.path.join(directory, f"block-{index}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EACCES, errno.EAGAIN):
                    continue  # held by a live process
                raise
            _held.add(index)
            return cls(index, count, fd, path)
        raise UidBlockError(errno.EUSERS, f"every uid block under {directory} is taken")

    def uid(self, slot: int) -> int:
        """The uid of worker slot ``slot`` (0-based)."""
        if not 0 <= slot < self.count:
            raise IndexError(f"slot {slot} outside a block of {self.count}")
        return self.first + slot

    def fileno(self) -> int | None:
        """The lock's descriptor (None once released): a sample must not keep it open, though
        it gains nothing from it."""
        return self._fd

    def release(self) -> None:
        """Give the block back (closing the descriptor drops the lock). Idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            _held.discard(self.index)

    def __repr__(self) -> str:
        return f"UidBlock(uids {self.first}..{self.first + self.count - 1}, lock {self.lock_path})"


def _lock_dir() -> str:
    """The first candidate directory that is ours alone, created 0700 if missing."""
    reasons = []
    for candidate in LOCK_DIRS:
        path = candidate.format(euid=os.geteuid())
        try:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            _check_dir(path)
            return path
        except OSError as e:
            reasons.append(f"{path}: {e.strerror or e}")
    raise UidBlockError(errno.EACCES, "no lock directory for uid blocks (" + "; ".join(reasons) + ")")


def _check_dir(path: str) -> None:
    """Refuse a directory someone else could have prepared (another user's, or a symlink, or
    writable by others): they could hold every lock, or swap lock files under us."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise UidBlockError(errno.EPERM, f"{path} is not a directory of mode 0700 owned by uid {os.geteuid()}")
