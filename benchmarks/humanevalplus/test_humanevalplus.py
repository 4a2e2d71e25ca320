"""HumanEval+ (EvalPlus v0.1.10): HumanEval's 164 problems, base and plus tests reported apart.

An item passes when a sample passes the plus tests (which include the base ones).
"""

import pytest


@pytest.mark.codeeval("humanevalplus")
def test_humanevalplus(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
