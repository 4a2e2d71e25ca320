"""Benchmark loaders: from a data location to a tuple of :class:`Problem`.

Knows nothing of models or pytest. Each benchmark family lives in its own module and registers
here by name. Loading is not cached here: the plugin caches per session, so that one run parses
each benchmark once and a second run in the same process sees changed files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_codeeval.problem import Problem


class BenchmarkError(Exception):
    """A benchmark name that is not known, or data that is malformed."""


class DataUnavailable(BenchmarkError):
    """The benchmark's data cannot be found; the message says what to get and where to put it."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    problems: tuple[Problem, ...]
    source: str  # where the data came from, for the results file

    @functools.cached_property
    def by_task_id(self) -> dict[str, Problem]:
        return {p.task_id: p for p in self.problems}


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    load: Callable[[Path | None], Benchmark]
    owns_task_id: Callable[[str], bool]  # a cheap test, to route a generations file's task ids
    description: str


_REGISTRY: dict[str, BenchmarkSpec] = {}


def register(spec: BenchmarkSpec) -> None:
    _REGISTRY[spec.name] = spec


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def spec(name: str) -> BenchmarkSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BenchmarkError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(names())}"
        ) from None


def load(name: str, data_dir: Path | None) -> Benchmark:
    """Load a benchmark's problems, from ``data_dir`` when given, else its packaged source."""
    return spec(name).load(data_dir)


def owner_of(task_id: str) -> str | None:
    """The benchmark whose task ids look like ``task_id``, if any."""
    _load_builtin()
    for name, s in _REGISTRY.items():
        if s.owns_task_id(task_id):
            return name
    return None


def _load_builtin() -> None:
    # Imported lazily: registering must not cost an import on pytest's start-up path.
    from pytest_codeeval.benchmarks import humaneval  # noqa: F401
