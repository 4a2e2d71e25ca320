"""ReCode's perturbed HumanEval (Wang et al. 2022): every (perturbation, problem) pair, and the
nominal prompts, one item each; ReCode's robustness metrics in the summary.

    pytest benchmarks/recode-humaneval --codeeval-model=reference --codeeval-data=DIR
    pytest benchmarks/recode-humaneval --codeeval-generations=samples.jsonl -k "nominal or func_name"
"""

import pytest


@pytest.mark.codeeval("recode-humaneval")
def test_recode_humaneval(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
