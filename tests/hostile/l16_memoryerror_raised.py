"""Class 16: a MemoryError raised by the program itself, far below its memory limit: not oom.

task: HumanEval/53
"""


def add(x: int, y: int):
    """Add two numbers x and y
    """
    raise MemoryError("not really out of memory")
