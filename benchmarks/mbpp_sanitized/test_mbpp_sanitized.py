"""MBPP sanitized: the 427 problems the MBPP authors verified by hand."""

import pytest


@pytest.mark.codeeval("mbpp_sanitized")
def test_mbpp_sanitized(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
