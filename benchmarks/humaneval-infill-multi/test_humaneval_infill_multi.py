"""HumanEval multi-line infilling (Bavarian et al. 2022): 5,815 holes of whole lines, the model writes the middle.

Data: <data>/infilling/ (see docs/benchmarks.md). Prompts use the model's fill-in-the-middle tokens
(--codeeval-fim when the tokenizer does not declare them).

    CODEEVAL_DATA=../shared/data pytest benchmarks/humaneval-infill-multi --codeeval-model=reference
    pytest benchmarks/humaneval-infill-multi --codeeval-generations=samples.jsonl   # completion = the middle
"""

import pytest


@pytest.mark.codeeval("humaneval-infill-multi")
def test_humaneval_infill_multi(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
