"""MultiPL-E: MBPP in language `d` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-d --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-d")
def test_mbpp_d(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
