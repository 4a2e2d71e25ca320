"""The base model as the baseline, evaluated in the same session (``--codeeval-baseline-model``).

The seed's SFT loop: a base checkpoint, then its LoRA fine-tune. Both are judged on the same
problems in one run: for every problem the candidate's item judges, this provider generates the
base model's samples (same sampling, n, seed, prompt mode and prefix; none of the candidate's
adapter, precision or quantization options) and judges them in the same sandbox, so the gate
compares paired counts that differ only in the weights. Knows nothing of pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_codeeval.generation import CompletionSource
from pytest_codeeval.problem import Problem
from pytest_codeeval.runner import Runner


class ModelBaseline:
    """A :class:`~pytest_codeeval.gate.BaselineRecords` that evaluates a model on demand."""

    def __init__(self, source: CompletionSource, runner: Runner, label: str) -> None:
        self.source = source
        # its own Runner (over the shared sandbox): queued work is keyed by problem, and the
        # candidate's queued samples for a problem must not be mistaken for the base's
        self.runner = runner
        self.label = label
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def covers(self, problem: Problem) -> bool:
        return True  # every selected problem is evaluated for the base model too

    def record(self, problem: Problem) -> Mapping[str, Any] | None:
        key = (problem.benchmark, problem.task_id)
        if key not in self.records:
            programs = self.source.programs(problem)
            if programs is None:
                return None
            self.records[key] = self.runner.evaluate(problem, programs).to_property()
        return self.records[key]

    def expect(self, problems: list[Problem]) -> None:
        """The upcoming problems: the base model batches them like the candidate does."""
        self.source.expect(problems)
