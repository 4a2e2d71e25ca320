"""MultiPL-E: MBPP in language `cpp` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-cpp --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-cpp")
def test_mbpp_cpp(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
