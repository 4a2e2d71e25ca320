"""MultiPL-E: HumanEval in language `cs` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-cs --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-cs")
def test_humaneval_cs(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
