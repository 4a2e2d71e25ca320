"""MBPP (Austin et al. 2021) and its hand-verified "sanitized" subset.

Data: ``<data>/mbpp/mbpp.jsonl`` and ``<data>/mbpp/sanitized-mbpp.json`` (google-research's
files), or the ``mbpp`` dataset through ``datasets`` when online.

Prompt and stops follow bigcode-evaluation-harness (after InCoder): a triple-quoted docstring
holding the description and then the first test, each on its own line (see :func:`prompt_for`);
the model writes the code after it. The program is prompt + completion (the docstring is inert), and the checks are
``test_setup_code`` and then the asserts, in that order: tasks 367 and 927 build trees with a
class the solution defines.
"""

from __future__ import annotations

import json
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

# bigcode-evaluation-harness, tasks/mbpp.py
STOP = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")
# bigcode uses 3 s; task 123 (amicable numbers below 9999) needs ~6 s on a 2-core machine.
TIMEOUT = 10.0
SPLITS = {"test": range(11, 511), "validation": range(511, 601), "train": range(601, 975),
          "prompt": range(1, 11), "full": range(1, 975)}


def task_id(number: int) -> str:
    return f"Mbpp/{number}"


def prompt_for(description: str, first_test: str) -> str:
    return f'"""\n{description}\n{first_test}\n"""\n'


def _data_file(data_dir: Path | None, name: str) -> Path | None:
    if data_dir is not None and (data_dir / "mbpp" / name).is_file():
        return data_dir / "mbpp" / name
    return None


def _unavailable(what: str, file: str, data_dir: Path | None) -> DataUnavailable:
    where = data_dir / "mbpp" if data_dir else Path("<DIR>/mbpp")
    return DataUnavailable(
        f"{what} data not found: put google-research's mbpp/{file} in {where}"
        + ("" if data_dir else " and pass --codeeval-data=<DIR> (or set CODEEVAL_DATA)")
        + hub_hint("mbpp")
    )


def _hub(config: str | None) -> list[dict[str, Any]] | None:
    if not hub_usable():
        return None
    try:
        import datasets

        ds = datasets.load_dataset("mbpp", config) if config else datasets.load_dataset("mbpp")
        return [dict(r) for split in ds.values() for r in split]
    except Exception:  # offline or refused: the caller says what to get instead
        return None


def _problem(name: str, number: int, description: str, code: str, tests: str, first_test: str,
             index: int) -> Problem:
    prompt = prompt_for(description, first_test)
    entry = ""
    for line in code.splitlines():  # the function the tests call: the last top-level def
        if line.startswith("def "):
            entry = line[4:].split("(")[0].strip()
    return Problem(
        benchmark=name,
        task_id=task_id(number),
        prompt=prompt,
        tests=tests,
        entry_point=entry,
        reference=prompt + code.replace("\r\n", "\n"),
        program_prefix=prompt,
        stop=STOP,
        timeout=TIMEOUT,
        index=index,
    )


def load_mbpp(data_dir: Path | None, options: LoadOptions) -> Benchmark:
    split = options.get("mbpp_split", "test")
    if split not in SPLITS:
        raise BenchmarkError(f"unknown MBPP split {split!r}; choose one of {', '.join(SPLITS)}")
    path = _data_file(data_dir, "mbpp.jsonl")
    if path is not None:
        records, source = read_jsonl(path), str(path)
    else:
        records, source = _hub("full"), "hub:mbpp"
        if records is None:
            raise _unavailable("MBPP", "mbpp.jsonl", data_dir)
    wanted = SPLITS[split]
    problems = []
    for r in sorted(records, key=lambda r: int(r["task_id"])):
        number = int(r["task_id"])
        if number not in wanted:
            continue
        try:
            tests = "\n".join([r.get("test_setup_code") or "", *r["test_list"]]).strip("\n") + "\n"
            problems.append(_problem("mbpp", number, r["text"], r["code"], tests, r["test_list"][0],
                                     len(problems)))
        except (KeyError, IndexError, TypeError) as e:
            raise BenchmarkError(f"{source}: task {number} is malformed ({e!r})") from None
    return Benchmark("mbpp", tuple(problems), f"{source} (split {split})")


def load_sanitized(data_dir: Path | None, options: LoadOptions) -> Benchmark:
    path = _data_file(data_dir, "sanitized-mbpp.json")
    if path is not None:
        try:
            records, source = json.loads(path.read_text(encoding="utf-8")), str(path)
        except (OSError, ValueError) as e:
            raise BenchmarkError(f"{path}: cannot read ({e})") from None
    else:
        records, source = _hub("sanitized"), "hub:mbpp/sanitized"
        if records is None:
            raise _unavailable("MBPP sanitized", "sanitized-mbpp.json", data_dir)
    problems = []
    for r in sorted(records, key=lambda r: int(r["task_id"])):
        try:
            tests = "\n".join([*r.get("test_imports", []), *r["test_list"]]) + "\n"
            problems.append(_problem("mbpp_sanitized", int(r["task_id"]), r["prompt"], r["code"], tests,
                                     r["test_list"][0], len(problems)))
        except (KeyError, IndexError, TypeError) as e:
            raise BenchmarkError(f"{source}: task {r.get('task_id')} is malformed ({e!r})") from None
    return Benchmark("mbpp_sanitized", tuple(problems), source)


def _is_mbpp_id(task_id: str) -> bool:
    return task_id.startswith("Mbpp/")


register(BenchmarkSpec("mbpp", load_mbpp, _is_mbpp_id, "MBPP, 500 test problems (974 with the full split)"))
register(BenchmarkSpec("mbpp_sanitized", load_sanitized, _is_mbpp_id, "MBPP sanitized, 427 hand-verified problems"))
