"""MultiPL-E: HumanEval in language `scala` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-scala --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-scala")
def test_humaneval_scala(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
