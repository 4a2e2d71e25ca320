"""ReCode's perturbed MBPP (Wang et al. 2022): every (perturbation, problem) pair of the 974
problems, and the nominal prompts, one item each; ReCode's robustness metrics in the summary.

    pytest benchmarks/recode-mbpp --codeeval-model=reference --codeeval-data=DIR -n 2
"""

import pytest


@pytest.mark.codeeval("recode-mbpp")
def test_recode_mbpp(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
