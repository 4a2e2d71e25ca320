"""HumanEval (Chen et al. 2021): 164 hand-written Python problems, one item each.

    pytest benchmarks/humaneval --codeeval-model=reference
    pytest benchmarks/humaneval --codeeval-generations=samples.jsonl -k HumanEval_0
"""

import pytest


@pytest.mark.codeeval("humaneval")
def test_humaneval(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
