"""Hooks pytest-codeeval calls, for conftests and other plugins to implement.

Registered by the entry point's ``pytest_addhooks``; this module imports nothing but pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_codeeval.generation import CompletionSource
    from pytest_codeeval.settings import Settings


@pytest.hookspec(firstresult=True)
def pytest_codeeval_make_source(config: pytest.Config, settings: Settings, model: str,
                                role: str) -> CompletionSource | Any | None:
    """Return the completion source for ``model``, or None to let the plugin build its own.

    Plug in your own inference stack from a conftest or a package: the plugin calls this hook
    for the candidate (``role == "model"``: ``--codeeval-model``, or the embedded default's
    name when none was given) and, with ``--codeeval-baseline-model``, for the baseline
    (``role == "baseline"``), in every process of the run (serial, each xdist worker, the xdist
    controller, which only describes it). It is not called when ``--codeeval-generations``
    replays a file or for ``reference``. The first non-None result is used.

    The source answers :class:`pytest_codeeval.generation.CompletionSource`'s methods:
    ``programs(problem)`` (the full programs to judge, one per sample: typically
    ``problem.program_from_completion(text)`` for each completion of ``problem.prompt``),
    ``available(problem)`` (the same if it costs nothing now, else None), ``expect(problems)``
    (the problems coming next, to batch), ``missing_reason(problem)`` and ``describe()`` (what
    the results file records of it); and a ``name`` for the header. Raise
    :class:`pytest_codeeval.generation.SourceError` with a one-line message for a source that
    cannot be used: it becomes a usage error at session start, or stops the session with that
    line when it fails later.
    """
