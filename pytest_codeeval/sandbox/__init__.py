"""Executing untrusted programs: a fork server in a bare interpreter, one supervisor per sample.

Imports nothing from pytest, torch or the rest of the plugin except the plain records in
:mod:`pytest_codeeval.problem`. See ``docs/architecture.md`` for the process layout.

The names below are imported lazily: the fork server imports ``sandbox.server`` through this
package, and must not pay for the client's threading/subprocess/concurrent.futures (every
module it holds makes each fork slower).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_codeeval.sandbox.client import Sandbox, SandboxError
    from pytest_codeeval.sandbox.protocol import Limits

__all__ = ["Limits", "Sandbox", "SandboxError"]


def __getattr__(name: str) -> Any:
    if name in ("Sandbox", "SandboxError"):
        from pytest_codeeval.sandbox import client

        return getattr(client, name)
    if name == "Limits":
        from pytest_codeeval.sandbox.protocol import Limits

        return Limits
    raise AttributeError(name)
