"""Held: signals to the sandbox's own processes: PID 1 (the server in its namespace), the
parent (the supervisor), every process (-1). Then a right answer: it must still be judged.

task: HumanEval/53
"""
import os
import signal

for _target in (1, os.getppid(), -1):
    try:
        os.kill(_target, signal.SIGKILL)
        print("signalled", _target)
    except OSError as e:
        print("refused", _target, type(e).__name__)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x + y
