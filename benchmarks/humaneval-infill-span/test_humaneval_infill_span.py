"""HumanEval random-span infilling (Bavarian et al. 2022): 1,640 holes cut at any character.

Data: <data>/infilling/ (see docs/benchmarks.md). Prompts use the model's fill-in-the-middle tokens
(--codeeval-fim when the tokenizer does not declare them).

    CODEEVAL_DATA=../shared/data pytest benchmarks/humaneval-infill-span --codeeval-model=reference
    pytest benchmarks/humaneval-infill-span --codeeval-generations=samples.jsonl   # completion = the middle
"""

import pytest


@pytest.mark.codeeval("humaneval-infill-span")
def test_humaneval_infill_span(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
