"""From problems and their programs to judged results, with look-ahead.

pytest runs items one at a time, but samples should fill every core: when item i starts, the
samples of items i+1, i+2, ... are already queued in the sandbox behind item i's. The item then
waits only for its own futures. Knows nothing of pytest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future

from pytest_codeeval.problem import Problem, ProblemResult, SampleResult
from pytest_codeeval.sandbox import Sandbox


class Runner:
    def __init__(self, sandbox: Sandbox, timeout: float | None = None) -> None:
        self.sandbox = sandbox
        self.timeout = timeout  # overrides every problem's own default when set
        self._lock = threading.Lock()
        # (benchmark, task_id) -> (programs, futures) submitted ahead of the item's turn
        self._queued: dict[tuple[str, str], tuple[tuple[str, ...], list[Future[SampleResult]]]] = {}

    def timeout_for(self, problem: Problem) -> float:
        return self.timeout if self.timeout is not None else problem.timeout

    def prefetch(self, work: Iterable[tuple[Problem, tuple[str, ...]]]) -> None:
        """Queue the samples of upcoming problems, in order, unless already queued."""
        for problem, programs in work:
            key = (problem.benchmark, problem.task_id)
            with self._lock:
                if key in self._queued:
                    continue
                self._queued[key] = (programs, self._submit(problem, programs))

    def queued_samples(self, problem: Problem) -> int | None:
        """How many samples of ``problem`` are queued ahead of its turn; None if it is not."""
        with self._lock:
            queued = self._queued.get((problem.benchmark, problem.task_id))
        return None if queued is None else len(queued[0])

    def evaluate(self, problem: Problem, programs: tuple[str, ...]) -> ProblemResult:
        """Judge every program of ``problem`` (reusing queued work) and wait for the verdicts."""
        key = (problem.benchmark, problem.task_id)
        with self._lock:
            queued = self._queued.pop(key, None)
        if queued is not None and queued[0] == programs:
            futures = queued[1]
        else:  # not prefetched, or a fixture override changed the programs
            futures = self._submit(problem, programs)
        return ProblemResult(problem, programs, tuple(f.result() for f in futures))

    def _submit(self, problem: Problem, programs: tuple[str, ...]) -> list[Future[SampleResult]]:
        timeout = self.timeout_for(problem)
        stages = problem.check_stages()
        return self.sandbox.submit_many(programs, stages, timeout, problem.data_path, problem.language,
                                        prelude=problem.judge_prelude, entry_point=problem.entry_point or None,
                                        label=problem.task_id)

    def close(self) -> None:
        with self._lock:
            self._queued.clear()
        self.sandbox.close()
