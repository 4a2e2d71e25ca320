"""Class 12: CPU spent in a double-forked, setsid'd orphan is not the sample's: the work takes
2 s of CPU against a 1 s limit, the sample itself only waits on a pipe.

task: HumanEval/53
"""
import os
import time


def _offload(seconds):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            import ctypes
            ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)
            start, n = time.process_time(), 0
            while time.process_time() - start < seconds:
                n += 1
            os.write(w, b"%d\n" % n)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    return int(os.read(r, 100) or b"0")


_WORK = _offload(2.0)
print("the orphan did", _WORK, "iterations; own CPU", round(time.process_time(), 2), "s")


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x + y  # right, but only with 2 s of CPU at a 1 s limit
