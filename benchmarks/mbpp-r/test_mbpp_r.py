"""MultiPL-E: MBPP in language `r` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-r --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-r")
def test_mbpp_r(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
