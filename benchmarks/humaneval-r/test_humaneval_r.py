"""MultiPL-E: HumanEval in language `r` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-r --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-r")
def test_humaneval_r(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
