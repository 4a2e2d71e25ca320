"""MultiPL-E: HumanEval in language `swift` (see docs/benchmarks.md). No reference solutions: replay completions.

    pytest benchmarks/humaneval-swift --codeeval-generations=samples.jsonl   # task_id = the file's name
"""

import pytest


@pytest.mark.codeeval("humaneval-swift")
def test_humaneval_swift(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
