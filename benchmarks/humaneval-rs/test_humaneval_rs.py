"""MultiPL-E: HumanEval in language `rs` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-rs --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-rs")
def test_humaneval_rs(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
