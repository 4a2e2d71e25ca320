"""Class 10: RLIMIT_NPROC is counted per uid, host-wide: a sample that holds every process
its uid may have starves any other sample that runs as the same uid (in another fork server).

task: HumanEval/53
"""
import ctypes
import os
import time

_children = 0
while _children < 4096:
    try:
        _pid = os.fork()
    except OSError:  # EAGAIN: the uid's limit
        break
    if _pid == 0:
        ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)  # PR_SET_NAME
        time.sleep(6)
        os._exit(0)
    _children += 1
print("holding", _children, "processes")
time.sleep(4)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
