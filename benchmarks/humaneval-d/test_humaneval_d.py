"""MultiPL-E: HumanEval in language `d` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-d --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-d")
def test_humaneval_d(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
