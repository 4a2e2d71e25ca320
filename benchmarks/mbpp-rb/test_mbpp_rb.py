"""MultiPL-E: MBPP in language `rb` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-rb --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-rb")
def test_mbpp_rb(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
