"""Class 16: a MemoryError raised by the program itself, far below its memory limit: the judge
saw a MemoryError come out of the program, so oom (as for a real allocation failure), never a pass.

task: HumanEval/53
"""


def add(x: int, y: int):
    """Add two numbers x and y
    """
    raise MemoryError("not really out of memory")
