"""MultiPL-E: HumanEval in language `go` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-go --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-go")
def test_humaneval_go(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
