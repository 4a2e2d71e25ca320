"""MBPP+ (EvalPlus v0.2.0): 378 MBPP problems, base and plus tests reported apart.

An item passes when a sample passes the plus tests (which include the base ones).
"""

import pytest


@pytest.mark.codeeval("mbppplus")
def test_mbppplus(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
