"""MultiPL-E: MBPP in language `scala` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-scala --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-scala")
def test_mbpp_scala(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
