"""MultiPL-E: HumanEval in language `java` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-java --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-java")
def test_humaneval_java(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
