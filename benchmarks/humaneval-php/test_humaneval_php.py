"""MultiPL-E: HumanEval in language `php` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-php --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-php")
def test_humaneval_php(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
