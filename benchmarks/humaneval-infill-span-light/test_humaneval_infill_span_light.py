"""HumanEval random-span infilling, light (Bavarian et al. 2022): one hole per problem, 164.

Data: <data>/infilling/ (see docs/benchmarks.md). Prompts use the model's fill-in-the-middle tokens
(--codeeval-fim when the tokenizer does not declare them).

    CODEEVAL_DATA=../shared/data pytest benchmarks/humaneval-infill-span-light --codeeval-model=reference
    pytest benchmarks/humaneval-infill-span-light --codeeval-generations=samples.jsonl   # completion = the middle
"""

import pytest


@pytest.mark.codeeval("humaneval-infill-span-light")
def test_humaneval_infill_span_light(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
