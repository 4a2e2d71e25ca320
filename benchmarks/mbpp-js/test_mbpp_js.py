"""MultiPL-E: MBPP in language `js` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-js --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-js")
def test_mbpp_js(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
