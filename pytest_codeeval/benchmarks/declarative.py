"""Custom benchmarks from a small declarative file, no Python needed.

A folder holding ``codeeval.toml`` (and its data file) is a benchmark: pytest collects the file
itself, one item per record. See ``benchmarks/example/`` for a worked example and
``docs/custom-benchmarks.md`` for every key. Every defect in the file is one line naming it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codeeval.benchmarks import (
    Benchmark,
    BenchmarkError,
    BenchmarkSpec,
    read_jsonl,
    register,
)
from pytest_codeeval.problem import Problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILENAME = "codeeval.toml"
TEST_STYLES = ("asserts", "check", "io")
PROGRAM_STYLES = ("prompt+completion", "completion")
_BENCHMARK_KEYS = {"name", "description", "data", "timeout", "stop", "prompt", "program", "tests"}
_FIELD_KEYS = {"task_id", "prompt", "entry_point", "reference", "asserts", "check", "inputs", "outputs"}
# which record fields each test style needs, beyond task_id and reference
_NEEDS = {"asserts": ("asserts",), "check": ("check", "entry_point"), "io": ("inputs", "outputs", "entry_point")}


@dataclass(frozen=True)
class Declaration:
    path: Path
    name: str
    description: str
    data: Path
    timeout: float
    stop: tuple[str, ...]
    prompt: str  # a str.format template over the record's fields
    program: str
    tests: str
    fields: dict[str, str]


def parse(path: Path) -> Declaration:
    """Read and validate a ``codeeval.toml``."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise BenchmarkError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BenchmarkError(f"{path}: not valid TOML ({e})") from None

    def fail(message: str) -> BenchmarkError:
        return BenchmarkError(f"{path}: {message}")

    unknown_tables = set(doc) - {"benchmark", "fields"}
    if unknown_tables:
        raise fail(f"unknown table [{sorted(unknown_tables)[0]}]; expected [benchmark] and [fields]")
    bench, fields = doc.get("benchmark"), doc.get("fields", {})
    if not isinstance(bench, dict):
        raise fail("needs a [benchmark] table")
    for table, keys, allowed in (("benchmark", bench, _BENCHMARK_KEYS), ("fields", fields, _FIELD_KEYS)):
        extra = set(keys) - allowed
        if extra:
            raise fail(f"unknown key {sorted(extra)[0]!r} in [{table}]; allowed: {', '.join(sorted(allowed))}")
    for key in ("name", "data"):
        if not isinstance(bench.get(key), str) or not bench[key]:
            raise fail(f"[benchmark] {key} is required (a string)")
    name = bench["name"]
    if not name.replace("_", "").replace("-", "").isalnum():
        raise fail(f"[benchmark] name {name!r} may hold only letters, digits, '-' and '_'")
    tests = bench.get("tests", "asserts")
    if tests not in TEST_STYLES:
        raise fail(f"[benchmark] tests must be one of {', '.join(TEST_STYLES)}, not {tests!r}")
    program = bench.get("program", "prompt+completion")
    if program not in PROGRAM_STYLES:
        raise fail(f"[benchmark] program must be one of {', '.join(PROGRAM_STYLES)}, not {program!r}")
    timeout = bench.get("timeout", 3.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise fail(f"[benchmark] timeout must be a positive number of seconds, not {timeout!r}")
    stop = bench.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise fail("[benchmark] stop must be a list of strings")
    if not all(isinstance(v, str) for v in fields.values()):
        raise fail("[fields] values must be strings (the record's field names)")
    mapping = {k: k for k in _FIELD_KEYS} | dict(fields)
    data = (path.parent / bench["data"]).resolve()
    if not data.is_file():
        raise fail(f"[benchmark] data file {bench['data']!r} not found (looked for {data})")
    return Declaration(path, name, str(bench.get("description", "")), data, float(timeout), tuple(stop),
                       str(bench.get("prompt", "{" + mapping["prompt"] + "}")), program, tests, mapping)


def _records(decl: Declaration) -> list[dict[str, Any]]:
    if decl.data.name.endswith((".jsonl", ".jsonl.gz")):
        return read_jsonl(decl.data)
    try:
        records = json.loads(decl.data.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BenchmarkError(f"{decl.data}: cannot read as JSON ({e})") from None
    if not isinstance(records, list):
        raise BenchmarkError(f"{decl.data}: expected a JSON list of records")
    return records


def _tests_for(decl: Declaration, record: dict[str, Any], get: Any) -> str:
    if decl.tests == "asserts":
        asserts = get("asserts")
        return (asserts if isinstance(asserts, str) else "\n".join(asserts)) + "\n"
    entry = get("entry_point")
    if decl.tests == "check":
        return f"{get('check')}\n\ncheck({entry})\n"
    inputs, outputs = get("inputs"), get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise KeyError("inputs and outputs must be lists of the same length")
    lines = []
    for args, expected in zip(inputs, outputs):
        args = args if isinstance(args, list) else [args]
        call = f"{entry}({', '.join(map(repr, args))})"
        label = f"{call[:120]} returned "
        lines.append(f"__codeeval_out__ = {call}")
        lines.append(f"assert __codeeval_out__ == {expected!r}, {label!r} + repr(__codeeval_out__)[:200]"
                     f" + ', expected ' + {repr(expected)[:200]!r}")
    return "\n".join(lines) + "\n"


def load(decl: Declaration) -> Benchmark:
    problems = []
    for i, record in enumerate(_records(decl)):
        where = f"{decl.data}: record {i + 1}"

        def get(key: str, record: dict[str, Any] = record, where: str = where) -> Any:
            field = decl.fields[key]
            if field not in record:
                raise BenchmarkError(f"{where} lacks the field {field!r} (mapped from {key!r} in {decl.path.name})")
            return record[field]

        try:
            prompt = decl.prompt.format_map(record)
        except (KeyError, IndexError, ValueError) as e:
            raise BenchmarkError(f"{decl.path}: [benchmark] prompt template: {e!r} not in {where}") from None
        try:
            tests = _tests_for(decl, record, get)
        except KeyError as e:
            raise BenchmarkError(f"{where}: {e.args[0]}") from None
        problems.append(
            Problem(
                benchmark=decl.name,
                task_id=str(get("task_id")),
                prompt=prompt,
                tests=tests,
                entry_point=str(get("entry_point")) if decl.fields["entry_point"] in record else "",
                reference=str(get("reference")),
                program_prefix=prompt if decl.program == "prompt+completion" else "",
                stop=decl.stop,
                timeout=decl.timeout,
                index=i,
            )
        )
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        dup = next(t for t in ids if ids.count(t) > 1)
        raise BenchmarkError(f"{decl.data}: task_id {dup!r} appears twice")
    return Benchmark(decl.name, tuple(problems), str(decl.data))


def register_file(path: Path) -> Declaration:
    """Parse a ``codeeval.toml`` and register its benchmark by name (idempotent)."""
    decl = parse(path)
    bench = load(decl)
    ids = {p.task_id for p in bench.problems}
    register(BenchmarkSpec(decl.name, lambda data_dir, options: bench, ids.__contains__,
                           decl.description or f"custom benchmark from {path}"))
    return decl
