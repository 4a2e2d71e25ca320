"""HumanEval single-line infilling (Bavarian et al. 2022): 1,033 holes of one line, the model writes the middle.

Data: <data>/infilling/ (see docs/benchmarks.md). Prompts use the model's fill-in-the-middle tokens
(--codeeval-fim when the tokenizer does not declare them).

    CODEEVAL_DATA=../shared/data pytest benchmarks/humaneval-infill-single --codeeval-model=reference
    pytest benchmarks/humaneval-infill-single --codeeval-generations=samples.jsonl   # completion = the middle
"""

import pytest


@pytest.mark.codeeval("humaneval-infill-single")
def test_humaneval_infill_single(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
