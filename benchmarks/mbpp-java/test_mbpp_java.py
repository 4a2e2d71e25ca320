"""MultiPL-E: MBPP in language `java` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/mbpp-java --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("mbpp-java")
def test_mbpp_java(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
