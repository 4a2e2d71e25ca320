"""MultiPL-E: HumanEval in language `rb` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-rb --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-rb")
def test_humaneval_rb(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
