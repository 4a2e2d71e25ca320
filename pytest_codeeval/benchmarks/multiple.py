"""MultiPL-E (Cassano et al. 2022): HumanEval and MBPP translated to other languages.

Thirty-six benchmarks, ``humaneval-<lang>`` and ``mbpp-<lang>`` for ``js``, ``cpp``, ``java``,
``rs``, ``go``, ``sh``, ``lua``, ``php``, ``pl``, ``rb``, ``r``, ``ts``, ``rkt``, ``scala``, ``cs``, ``d``,
``jl`` and ``swift`` (the runners: :mod:`pytest_codeeval.sandbox.languages`). Task ids are the
files' ``name`` values (``HumanEval_0_has_close_elements``, ``mbpp_3_is_not_prime``), as
MultiPL-E's own tools use them.

Data, in order of preference: ``<data>/multipl-e/<bench>-reworded.jsonl`` (the prompt files of
nuprl/MultiPL-E, "reworded" variant); the ``nuprl/MultiPL-E`` dataset (config ``<bench>``)
through ``datasets`` for users who are online.

Prompt, stops and program follow bigcode-evaluation-harness's ``multiple-<lang>`` tasks: the
prompt is stripped, generation stops at the record's ``stop_tokens`` (and ``<file_sep>``), and
the program is prompt + completion, with the record's ``tests`` (a test driver in the same
language) appended by the language's runner in the sandbox. There are no reference solutions.
A missing compiler or runtime skips the benchmark's items with the Debian package to install.
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
    hub_hint,
    hub_usable,
    read_jsonl,
    register,
)
from pytest_codeeval.problem import Problem
from pytest_codeeval.sandbox import languages

LANGUAGES = ("js", "cpp", "java", "rs", "go", "sh", "lua", "php", "pl", "rb", "r", "ts",
             "rkt", "scala", "cs", "d", "jl", "swift")
SOURCES = {"humaneval": "HumanEval_", "mbpp": "mbpp_"}  # benchmark family -> task id prefix
FOLDER = "multipl-e"


def file_name(bench: str) -> str:
    return f"{bench}-reworded.jsonl"


def _hub(bench: str) -> list[dict[str, Any]] | None:
    if not hub_usable():
        return None
    try:
        import datasets

        return [dict(r) for r in datasets.load_dataset("nuprl/MultiPL-E", bench, split="test")]
    except Exception:  # offline, or the hub refused: the caller says what to get instead
        return None


def problems_from_records(bench: str, language: str, records: list[dict[str, Any]], where: str) -> tuple[Problem, ...]:
    problems = []
    seen = set()
    for i, r in enumerate(records):
        try:
            name, prompt, tests, stops = r["name"], r["prompt"], r["tests"], r["stop_tokens"]
        except KeyError as e:
            raise BenchmarkError(f"{where}: record {i + 1} lacks the field {e}") from None
        if name in seen:
            raise BenchmarkError(f"{where}: record {i + 1}: duplicated name {name!r}")
        seen.add(name)
        problems.append(Problem(
            benchmark=bench,
            task_id=name,
            prompt=prompt.strip(),  # bigcode's get_prompt
            tests=tests,
            entry_point=name.split("_", 2)[-1],  # HumanEval_0_has_close_elements -> has_close_elements
            reference="",  # MultiPL-E ships none
            program_prefix=prompt.strip(),  # bigcode: the generation holds the stripped prompt
            language=language,
            stop=(*stops, "<file_sep>"),
            timeout=languages.RUN_TIMEOUT,
            index=i,
        ))
    return tuple(problems)


def _loader(bench: str, language: str):  # type: ignore[no-untyped-def]
    def load(data_dir: Path | None, options: LoadOptions) -> Benchmark:
        path = data_dir / FOLDER / file_name(bench) if data_dir is not None else None
        if path is not None and path.is_file():
            records, source = read_jsonl(path), str(path)
        else:
            records, source = _hub(bench), f"hub:nuprl/MultiPL-E/{bench}"
            if records is None:
                where = data_dir / FOLDER if data_dir else Path("<DIR>") / FOLDER
                raise DataUnavailable(
                    f"MultiPL-E data not found: put nuprl/MultiPL-E's prompts/{file_name(bench)} in {where}"
                    + ("" if data_dir else " and pass --codeeval-data=<DIR> (or set CODEEVAL_DATA)")
                    + hub_hint(f"nuprl/MultiPL-E {bench}"))
        problems = problems_from_records(bench, language, records, source)
        return Benchmark(bench, problems, source, unavailable=languages.missing(language))

    return load


for _source, _prefix in SOURCES.items():
    for _language in LANGUAGES:
        _name = f"{_source}-{_language}"
        register(BenchmarkSpec(
            name=_name,
            load=_loader(_name, _language),
            owns_task_id=lambda task_id, prefix=_prefix: task_id.startswith(prefix),
            description=f"MultiPL-E {_source} in {languages.get(_language).display}",
        ))
