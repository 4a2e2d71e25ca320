"""The results file as a format: its version key, the JSON Schema shipped with the package checked
against files real runs wrote, and the mode results and generations files are written with."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import cli, report
from pytest_codeeval.sandbox import languages
from tests.conftest import REGRESSED, REPO, humaneval_ids, write_counts, write_jsonl

jsonschema = pytest.importorskip("jsonschema", reason="the results-file schema is checked with jsonschema "
                                 "(pip install 'pytest-codeeval[test]')")


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(report.SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)  # the schema itself is valid draft 2020-12
    return jsonschema.Draft202012Validator(schema)


def problems_of(validator: Any, doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the schema, one line each (empty: valid)."""
    return [f"{e.json_path}: {e.message[:300]}" for e in validator.iter_errors(doc)]


def run_json(pytester: pytest.Pytester, *args: str, name: str = "r.json") -> dict[str, Any]:
    pytester.runpytest(*args, f"--codeeval-json={name}", "-p", "no:cacheprovider", "-q")
    return json.loads((pytester.path / name).read_text())


# -- real files against the schema --------------------------------------------------------------
def test_reference_run_on_humaneval_matches_the_schema(pytester: pytest.Pytester, bench_dir: Path, validator: Any) -> None:
    doc = run_json(pytester, "benchmarks/humaneval", "--codeeval-model=reference")
    assert next(iter(doc)) == "format" and doc["format"] == report.RESULTS_FORMAT == 1
    assert doc["humaneval"] == {"pass@1": 1.0} and "partial" not in doc  # judged whole: at the top
    assert doc["summary"]["humaneval"]["coverage"]["whole_benchmark"] is True
    assert problems_of(validator, doc) == []


def test_partial_replay_run_matches_the_schema(baseline_json: Path, validator: Any) -> None:
    """24 of HumanEval's problems from a generations file, 10 samples each: scores under "partial"."""
    doc = json.loads(baseline_json.read_text())
    assert doc["format"] == 1 and "humaneval" not in doc and set(doc["partial"]) == {"humaneval"}
    assert doc["summary"]["humaneval"]["coverage"]["judged"] == 24
    assert problems_of(validator, doc) == []


def test_gated_and_stopped_runs_match_the_schema(pytester: pytest.Pytester, bench_dir: Path, baseline_json: Path,
                                                 humaneval_records: list[dict[str, Any]], validator: Any) -> None:
    shutil.copy(baseline_json, pytester.path / "base.json")
    write_counts(pytester.path / "cand.jsonl", humaneval_records, REGRESSED)
    gated = run_json(pytester, *humaneval_ids(), "--codeeval-generations=cand.jsonl", "--codeeval-baseline=base.json",
                     "--codeeval-fail-under=humaneval:pass@1=0.9", "--codeeval-fail-under=humaneval:pass@100=0.5")
    assert gated["gate"]["exit_status"] == 11 and set(gated["gate"]["baseline"]["problems"]) == {"humaneval"}
    assert problems_of(validator, gated) == []
    # codeeval diff --fail-on-regression decides as this gate did, on the same two files
    [comparison] = cli.regression_check(cli.load_run(str(pytester.path / "base.json")),
                                        cli.load_run(str(pytester.path / "r.json")))
    recorded = gated["gate"]["baseline"]["benchmarks"]["humaneval"]
    assert comparison.to_json() == recorded
    # stopped at the first unsolved problem (-x): not complete, the rest not judged
    stopped = run_json(pytester, *humaneval_ids(), "--codeeval-generations=cand.jsonl", "-x", name="x.json")
    assert stopped["complete"] is False and isinstance(stopped["stopped"], str)
    assert stopped["summary"]["humaneval"]["coverage"]["not_judged"]
    assert problems_of(validator, stopped) == []


def test_two_level_benchmark_run_matches_the_schema(pytester: pytest.Pytester, bench_dirs: Path, validator: Any) -> None:
    """HumanEval+: per-problem c_base, "<bench>-base" scores and ci_base."""
    ids = [f"benchmarks/humanevalplus/test_humanevalplus.py::test_humanevalplus[HumanEval_{i}]" for i in range(4)]
    doc = run_json(pytester, *ids, "--codeeval-model=reference", "--codeeval-n=2")
    assert set(doc["partial"]) == {"humanevalplus", "humanevalplus-base"}
    assert doc["problems"]["humanevalplus"]["HumanEval/0"]["c_base"] == 2
    assert "ci_base" in doc["summary"]["humanevalplus"]
    assert problems_of(validator, doc) == []


def test_compiled_language_run_matches_the_schema(pytester: pytest.Pytester, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch, validator: Any) -> None:
    """MultiPL-E: per-sample compile_seconds and run_seconds."""
    reason = languages.missing("js")
    if reason:
        pytest.skip(reason)
    shutil.copytree(REPO / "benchmarks" / "humaneval-js", pytester.path / "benchmarks" / "humaneval-js",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("CODEEVAL_DATA", str(data_dir))
    rows = [json.loads(line) for line in (REPO / "tests" / "data" / "multiple_solved.jsonl").read_text().splitlines()
            if line.strip()]
    write_jsonl(pytester.path / "js.jsonl", [{"task_id": r["task_id"], "completion": r["completion"]}
                                             for r in rows if r["benchmark"] == "humaneval-js"])
    doc = run_json(pytester, "benchmarks/humaneval-js", "--codeeval-generations=js.jsonl")
    record = next(iter(doc["problems"]["humaneval-js"].values()))
    assert len(record["compile_seconds"]) == len(record["run_seconds"]) == record["n"]
    assert problems_of(validator, doc) == []


# -- what the schema refuses -------------------------------------------------------------------
def broken(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out)
    return out


def test_schema_rejects_malformed_results_files(baseline_json: Path, validator: Any) -> None:
    good = json.loads(baseline_json.read_text())
    assert problems_of(validator, good) == []
    first = next(iter(good["problems"]["humaneval"]))
    cases = {
        "no format": lambda d: d.pop("format"),
        "a future format": lambda d: d.update(format=2),
        "a score above 1": lambda d: d["partial"]["humaneval"].update({"pass@1": 1.5}),
        "a metric not pass@k": lambda d: d["partial"]["humaneval"].update({"pass@one": 0.5}),
        "a benchmark that is not a score block": lambda d: d.update(humaneval=0.5),
        "a count as text": lambda d: d["problems"]["humaneval"][first].update(c="4"),
        "no samples": lambda d: d["problems"]["humaneval"][first].update(n=0),
        "an unknown outcome": lambda d: d["problems"]["humaneval"][first]["outcomes"].append("exploded"),
        "an unknown record field": lambda d: d["problems"]["humaneval"][first].update(verdict="ok"),
        "coverage without judged": lambda d: d["summary"]["humaneval"]["coverage"].pop("judged"),
        "an interval of three": lambda d: d["summary"]["humaneval"]["ci"].update({"pass@1": [0.1, 0.2, 0.3]}),
        "complete as text": lambda d: d.update(complete="yes"),
        "no environment": lambda d: d.pop("environment"),
        "a fingerprint of another kind": lambda d: d["datasets"]["humaneval"].update(fingerprint="md5:00"),
        "a gate exit status pytest never gets": lambda d: d.update(gate={"exit_status": 3, "scopes": {}}),
    }
    for what, change in cases.items():
        assert problems_of(validator, broken(good, change)), f"the schema accepted a file with {what}"


# -- file modes ---------------------------------------------------------------------------------
@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027, 0o077])
def test_files_are_written_with_the_users_umask(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "out" / "results.json"
    with umask(mask):
        report.write_json_atomically(target, {"format": 1})
        assert mode(target) == 0o666 & ~mask
        target.chmod(0o600)  # a rewrite makes a new file: the umask's mode again, not the old file's
        report.write_text_atomically(target, "again\n")
    assert mode(target) == 0o666 & ~mask and target.read_text() == "again\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]  # no temporary file left


def test_an_interrupted_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    report.write_text_atomically(target, "old\n")

    def fail(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        report.write_text_atomically(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_results_and_generations_files_of_a_run_get_the_umask_mode(pytester: pytest.Pytester, bench_dir: Path) -> None:
    with umask(0o022):
        result = pytester.runpytest("benchmarks/humaneval", "-k", "HumanEval_0 or HumanEval_1",
                                    "--codeeval-model=reference", "--codeeval-json=out/r.json",
                                    "--codeeval-save-generations=out/gens.jsonl", "-p", "no:cacheprovider", "-q")
    assert result.ret == 0
    assert mode(pytester.path / "out" / "r.json") == 0o644
    assert mode(pytester.path / "out" / "gens.jsonl") == 0o644

