"""MultiPL-E: MBPP in language `go` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-go --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-go")
def test_mbpp_go(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
