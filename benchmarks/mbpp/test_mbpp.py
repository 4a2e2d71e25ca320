"""MBPP (Austin et al. 2021): the 500 test problems (task ids 11-510); --codeeval-mbpp-split=full for all 974.

    pytest benchmarks/mbpp --codeeval-model=reference --codeeval-data=DIR
"""

import pytest


@pytest.mark.codeeval("mbpp")
def test_mbpp(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
