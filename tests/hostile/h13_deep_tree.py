"""Class 13: a 3,000-deep directory tree in the working directory (deeper than Python's
recursion limit; its paths longer than PATH_MAX).

task: HumanEval/53
"""
import os

_here = os.getcwd()
for _ in range(3000):
    os.mkdir("d")
    os.chdir("d")
os.chdir(_here)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
