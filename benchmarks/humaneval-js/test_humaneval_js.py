"""MultiPL-E: HumanEval in language `js` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-js --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-js")
def test_humaneval_js(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
