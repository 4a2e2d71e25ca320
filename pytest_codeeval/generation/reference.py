"""The benchmark's own reference solutions as completions: a self-check of data and sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_codeeval.problem import Problem


class ReferenceSource:
    """Serves each problem's reference program, ``n`` times (1 unless told otherwise)."""

    name = "reference"

    def __init__(self, n: int | None = None) -> None:
        self.n = n or 1

    def programs(self, problem: Problem) -> tuple[str, ...] | None:
        if not problem.reference:  # MultiPL-E ships no solutions
            return None
        return (problem.reference,) * self.n

    def available(self, problem: Problem) -> tuple[str, ...] | None:
        return self.programs(problem)

    def expect(self, problems: Sequence[Problem]) -> None:
        """Nothing to prepare: the programs are at hand."""

    def missing_reason(self, problem: Problem) -> str:
        return (f"{problem.benchmark} has no reference solutions: replay completions with "
                "--codeeval-generations=FILE")

    def describe(self) -> dict[str, Any]:
        return {"model": "reference", "n_samples": self.n}
