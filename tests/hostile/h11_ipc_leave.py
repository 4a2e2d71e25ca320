"""Class 11: System V shared memory and message queues and POSIX message queues outlive the
sample: a message for later samples, and touched shared memory beyond the sample's memory
limit that stays pinned after it exits.

task: HumanEval/53
"""
import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.argtypes = [ctypes.c_void_p]
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
IPC_CREAT, IPC_NOWAIT = 0o1000, 0o4000
KEY = 0x5EED
MESSAGE = b"__MARKER__"


class _Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 128)]


def _pin(key, megabytes):
    """A segment of ``megabytes``, touched, then detached: it no longer counts against this
    process's address space, but its pages stay."""
    shmid = _libc.shmget(key, megabytes << 20, IPC_CREAT | 0o666)
    if shmid < 0:
        return False
    addr = _libc.shmat(shmid, None, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        return False
    ctypes.memset(addr, 0x41, megabytes << 20)
    ctypes.memmove(addr, MESSAGE, len(MESSAGE))
    _libc.shmdt(ctypes.c_void_p(addr))
    return True


_pinned = sum(__PIN_MB__ for i in range(__PIN_COUNT__) if _pin(KEY + i, __PIN_MB__))
_queue = _libc.msgget(KEY, IPC_CREAT | 0o666)
if _queue >= 0:
    _libc.msgsnd(_queue, ctypes.byref(_Msg(1, MESSAGE)), len(MESSAGE), IPC_NOWAIT)
try:
    _rt = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)
    _mq = _rt.mq_open(b"/__MARKER__", os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK, 0o666, None)
    if _mq >= 0:
        _rt.mq_send(_mq, MESSAGE, len(MESSAGE), 0)
except (OSError, AttributeError):
    pass
print("pinned MiB:", _pinned, "queue:", _queue)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
