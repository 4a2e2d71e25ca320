"""MultiPL-E: MBPP in language `cs` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-cs --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-cs")
def test_mbpp_cs(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
