"""MultiPL-E: MBPP in language `rs` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-rs --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-rs")
def test_mbpp_rs(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
