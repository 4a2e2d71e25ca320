"""MultiPL-E: HumanEval in language `sh` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-sh --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-sh")
def test_humaneval_sh(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
