"""Class 11, the later sample: a correct program that also reports what earlier samples left
in System V and POSIX IPC (messages, segments).

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
IPC_NOWAIT, SHM_RDONLY = 0o4000, 0o10000
KEY = 0x5EED


class _Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 128)]


_found = []
_shm = _libc.shmget(KEY, 0, 0)
if _shm >= 0:
    _addr = _libc.shmat(_shm, None, SHM_RDONLY)
    if _addr not in (None, ctypes.c_void_p(-1).value):
        _found.append("shm " + ctypes.string_at(_addr, 64).split(b"A")[0].decode("ascii", "replace"))
        _libc.shmdt(ctypes.c_void_p(_addr))
_queue = _libc.msgget(KEY, 0)
if _queue >= 0:
    _m = _Msg()
    _n = _libc.msgrcv(_queue, ctypes.byref(_m), 128, 0, IPC_NOWAIT)
    if _n > 0:
        _found.append("msg " + _m.mtext[:_n].decode("ascii", "replace"))
try:
    _rt = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)
    _mq = _rt.mq_open(b"/__MARKER__", os.O_RDONLY | os.O_NONBLOCK)
    if _mq >= 0:
        _buf = ctypes.create_string_buffer(8192)
        _n = _rt.mq_receive(_mq, _buf, 8192, None)
        if _n > 0:
            _found.append("mq " + _buf.raw[:_n].decode("ascii", "replace"))
except (OSError, AttributeError):
    pass
try:
    with open("/proc/sysvipc/shm") as _f:
        _rows = [line.split() for line in _f.read().splitlines()[1:]]
    _found.append("shm bytes %d" % sum(int(r[3]) for r in _rows))
except (OSError, ValueError, IndexError):
    pass
print("left by earlier samples:", _found)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x + y
