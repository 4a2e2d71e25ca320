"""Held: processes left behind: a forked child, a double-forked setsid daemon, a subprocess in
a new session; all named with the marker. Then a right answer.

task: HumanEval/53
"""
import ctypes
import os
import subprocess
import time


def _name_me():
    ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)  # PR_SET_NAME


if os.fork() == 0:
    _name_me()
    time.sleep(60)
    os._exit(0)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        _name_me()
        time.sleep(60)
    os._exit(0)
subprocess.Popen(["/bin/sh", "-c", "exec -a __MARKER__ sleep 60"], start_new_session=True)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x + y
