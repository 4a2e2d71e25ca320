"""MultiPL-E: MBPP in language `rkt` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-rkt --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-rkt")
def test_mbpp_rkt(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
