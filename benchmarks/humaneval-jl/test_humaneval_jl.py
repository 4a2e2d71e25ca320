"""MultiPL-E: HumanEval in language `jl` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-jl --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-jl")
def test_humaneval_jl(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
