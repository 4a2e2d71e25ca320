"""MultiPL-E: MBPP in language `lua` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-lua --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-lua")
def test_mbpp_lua(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
