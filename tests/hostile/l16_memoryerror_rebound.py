"""Class 16: builtins.MemoryError rebound to AssertionError: a failed check must still read
failed, not oom.

task: HumanEval/53
"""
import builtins

builtins.MemoryError = AssertionError


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
