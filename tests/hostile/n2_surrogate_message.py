"""New: an exception message holding a lone surrogate. Reports of other problems must not be
lost because of it (under xdist, report text travels between processes).

task: HumanEval/26
"""
from typing import List


def remove_duplicates(numbers: List[int]) -> List[int]:
    """ From a list of integers, remove all elements that occur more than once.
    Keep order of elements left the same as in the input.
    """
    raise ValueError("unpaired surrogate \ud800 in a message")
