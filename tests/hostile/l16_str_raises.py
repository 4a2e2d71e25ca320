"""New (labels): an exception whose __str__ raises: the sample failed; the label must say so,
not that the sandbox broke.

task: HumanEval/53
"""


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")


def add(x: int, y: int):
    """Add two numbers x and y
    """
    raise _Unprintable()
