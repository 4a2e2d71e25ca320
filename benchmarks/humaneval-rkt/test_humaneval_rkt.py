"""MultiPL-E: HumanEval in language `rkt` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-rkt --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-rkt")
def test_humaneval_rkt(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
