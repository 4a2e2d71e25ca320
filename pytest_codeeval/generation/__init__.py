"""Where completions come from: a model, a generations file, or the reference solutions.

Every source answers one question, :meth:`CompletionSource.programs`: the full programs to judge
for a problem, or ``None`` when it has nothing for it (the item is then skipped). Knows nothing
of pytest or the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pytest_codeeval.problem import Problem


class SourceError(Exception):
    """A source that cannot be used; the message is one line, naming file and line if any."""


class CompletionSource(Protocol):
    name: str

    def programs(self, problem: Problem) -> tuple[str, ...] | None:
        """The full programs (one per sample) to judge for ``problem``, or None if absent."""
        ...

    def available(self, problem: Problem) -> tuple[str, ...] | None:
        """What :meth:`programs` would return if that costs nothing now (no generation), else
        None; used to queue upcoming items' samples in the sandbox ahead of their turn."""
        ...

    def expect(self, problems: Sequence[Problem]) -> None:
        """The problems whose items come next, in run order (a model source batches them)."""
        ...

    def missing_reason(self, problem: Problem) -> str:
        """Why :meth:`programs` returned None, for the skip message."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the results file's config records about this source."""
        ...
