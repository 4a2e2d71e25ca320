"""MultiPL-E: MBPP in language `sh` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-sh --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-sh")
def test_mbpp_sh(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
