"""MultiPL-E: HumanEval in language `pl` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-pl --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-pl")
def test_humaneval_pl(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
