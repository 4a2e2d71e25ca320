"""MultiPL-E: MBPP in language `pl` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-pl --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-pl")
def test_mbpp_pl(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
