"""MultiPL-E: HumanEval in language `lua` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-lua --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-lua")
def test_humaneval_lua(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
