"""Class 4: the candidate returns an object equal to everything.

task: HumanEval/30
"""


class _Anything(list):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


def get_positive(l: list):
    """Return only positive numbers in the list.
    """
    return _Anything()
