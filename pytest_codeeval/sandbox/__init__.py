"""Executing untrusted programs: a fork server in a bare interpreter, one supervisor per sample.

Imports nothing from pytest, torch or the rest of the plugin except the plain records in
:mod:`pytest_codeeval.problem`. See ``docs/architecture.md`` for the process layout.
"""

from pytest_codeeval.sandbox.client import Sandbox, SandboxError
from pytest_codeeval.sandbox.protocol import Limits

__all__ = ["Limits", "Sandbox", "SandboxError"]
