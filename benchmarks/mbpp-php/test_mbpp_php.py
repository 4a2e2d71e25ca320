"""MultiPL-E: MBPP in language `php` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-php --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-php")
def test_mbpp_php(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
