"""MultiPL-E: MBPP in language `jl` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-jl --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-jl")
def test_mbpp_jl(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
