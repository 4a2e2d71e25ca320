"""A correct program that keeps a value in a scratch file in its working directory for a
while (the neighbour that classes 10 and n6 overwrite or read). __MARKER__

task: HumanEval/53
"""
import time

with open("scratch.txt", "w") as _f:
    _f.write("1 __MARKER__")
time.sleep(2.0)
with open("scratch.txt") as _f:
    _SIGN = int(_f.read().split()[0])


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x + _SIGN * y
