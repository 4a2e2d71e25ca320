"""Reading generations files: both layouts, and a one-line error for every defect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_codeeval import benchmarks
from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation.replay import GenerationsFile, ReplaySource, parse_spec

HE = benchmarks.load("humaneval", None)


def load(name: str) -> benchmarks.Benchmark:
    return benchmarks.load(name, None)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def source(path: Path, n: int | None = None, bench: str | None = None,
           run: tuple[str, ...] = ("humaneval",)) -> ReplaySource:
    return ReplaySource([GenerationsFile(path, bench)], load, n, run)


def test_jsonl_completion_is_appended_to_the_prompt_and_solution_taken_whole(tmp_path: Path) -> None:
    p0, p1 = HE.problems[0], HE.problems[1]
    f = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": p0.task_id, "completion": "    return 1\n"},
        {"task_id": p0.task_id, "completion": "    return 2\n"},
        {"task_id": p1.task_id, "solution": "WHOLE PROGRAM 1"},
        {"task_id": p1.task_id, "solution": "WHOLE PROGRAM 2", "completion": "ignored"},
    ])
    src = source(f)
    assert src.programs(p0) == (p0.program_prefix + "    return 1\n", p0.program_prefix + "    return 2\n")
    assert src.programs(p1) == ("WHOLE PROGRAM 1", "WHOLE PROGRAM 2")
    assert src.programs(HE.problems[2]) is None
    assert src.missing_reason(HE.problems[2]) == f"no samples for HumanEval/2 in {f}"


def test_n_caps_the_samples_and_evens_out_a_ragged_file(tmp_path: Path) -> None:
    p0, p1 = HE.problems[0], HE.problems[1]
    rows = [{"task_id": p0.task_id, "completion": str(i)} for i in range(5)]
    rows += [{"task_id": p1.task_id, "completion": str(i)} for i in range(3)]
    f = write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(SourceError, match=r"s\.jsonl:6: ragged file, HumanEval/1 has 3 samples but HumanEval/0 has 5"):
        source(f)
    src = source(f, n=2)
    assert src.programs(p0) == (p0.program_prefix + "0", p0.program_prefix + "1")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"s\.jsonl:2: malformed line, not JSON"),
        ("[1, 2]", r"s\.jsonl:2: malformed line, expected a JSON object"),
        ('{"completion": "x"}', r"s\.jsonl:2: malformed line, no string task_id"),
        ('{"task_id": "HumanEval/1"}', r"s\.jsonl:2: malformed line, needs a string 'completion' or 'solution'"),
        ('{"task_id": "HumanEval/999", "completion": ""}', r"s\.jsonl:2: unknown task_id 'HumanEval/999' \(not in humaneval\)"),
        ('{"task_id": "Nope/1", "completion": ""}', r"s\.jsonl:2: unknown task_id 'Nope/1' \(no benchmark has ids like it\)"),
    ],
)
def test_jsonl_defects_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    f = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}, line])
    with pytest.raises(SourceError, match=message) as info:
        source(f)
    assert "\n" not in str(info.value)


def test_gzipped_jsonl_is_read(tmp_path: Path) -> None:
    import gzip

    f = tmp_path / "s.jsonl.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(json.dumps({"task_id": "HumanEval/3", "completion": "c"}) + "\n")
    assert source(f).programs(HE.problems[3]) == (HE.problems[3].program_prefix + "c",)


def test_bigcode_json_is_read_in_dataset_order(tmp_path: Path) -> None:
    f = tmp_path / "generations_humaneval.json"
    f.write_text(json.dumps([["a0", "b0"], ["a1", "b1"], []]))
    src = source(f)
    assert src.programs(HE.problems[0]) == ("a0", "b0")
    assert src.programs(HE.problems[1]) == ("a1", "b1")
    assert src.programs(HE.problems[2]) is None  # an empty list: no samples, skipped
    assert src.programs(HE.problems[3]) is None  # beyond a --limit'ed file


def test_bigcode_json_benchmark_from_prefix_or_run(tmp_path: Path) -> None:
    f = tmp_path / "gens.json"
    f.write_text(json.dumps([["x"]]))
    with pytest.raises(SourceError, match=r"gens\.json: cannot tell which benchmark.*--codeeval-generations=humaneval=gens\.json"):
        source(f, run=())
    assert source(f, bench="humaneval").programs(HE.problems[0]) == ("x",)
    assert source(f, run=("humaneval",)).programs(HE.problems[0]) == ("x",)
    assert parse_spec("humaneval=gens.json", tmp_path) == GenerationsFile(tmp_path / "gens.json", "humaneval")
    assert parse_spec("sub/gens.json", tmp_path) == GenerationsFile(tmp_path / "sub" / "gens.json", None)


@pytest.mark.parametrize(
    "content, message",
    [
        ('[["a"], ', r"gens_humaneval\.json:1:\d+: not valid JSON"),
        ('{"a": 1}', r"gens_humaneval\.json: expected a JSON list"),
        ('[["a"], "b"]', r"gens_humaneval\.json: entry 1 \(HumanEval/1\): expected a list of program strings"),
        ('[["a"], [1]]', r"gens_humaneval\.json: entry 1 \(HumanEval/1\): expected a list of program strings"),
        ('[["a"], ["b", "c"]]', r"gens_humaneval\.json: entry 1 \(HumanEval/1\): ragged file"),
        (json.dumps([["a"]] * 165), r"gens_humaneval\.json: 165 entries, but humaneval has only 164 problems"),
        ("[]", r"gens_humaneval\.json: no samples in the file"),
    ],
)
def test_bigcode_defects_name_file_and_entry(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "gens_humaneval.json"
    f.write_text(content)
    with pytest.raises(SourceError, match=message):
        source(f)


def test_missing_file_and_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="generations file not found"):
        source(tmp_path / "absent.jsonl")
    (tmp_path / "s.csv").write_text("x")
    with pytest.raises(SourceError, match="unknown generations layout"):
        source(tmp_path / "s.csv")


def test_the_same_task_in_two_files_is_refused(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"task_id": "HumanEval/0", "completion": "y"}])
    with pytest.raises(SourceError, match="also in another generations file"):
        ReplaySource([GenerationsFile(a), GenerationsFile(b)], load, run_benchmarks=("humaneval",))
