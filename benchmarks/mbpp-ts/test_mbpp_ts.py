"""MultiPL-E: MBPP in language `ts` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-ts --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-ts")
def test_mbpp_ts(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
