"""MultiPL-E: MBPP in language `swift` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-swift --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-swift")
def test_mbpp_swift(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
