"""EvalPlus's eval_results.json as records (evalplus_results.py) and as a --codeeval-baseline."""

from __future__ import annotations

import gzip
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import evalplus_results, gate
from pytest_codeeval.problem import Problem
from tests.conftest import REPO, write_jsonl

# written by evalplus 0.3.1 itself: see tests/test_cli.py (EVALPLUS_FILE) for how
EVALPLUS_FILE = REPO / "tests" / "data" / "evalplus_eval_results.json.gz"
# HumanEval/0..5 in that file: samples (of 3) passing base, and passing base and plus
BASE_C = [2, 2, 1, 2, 2, 1]
PLUS_C = [2, 1, 1, 2, 1, 1]


@pytest.fixture(scope="module")
def evalplus_doc() -> dict[str, Any]:
    return json.loads(gzip.decompress(EVALPLUS_FILE.read_bytes()))


def problem(benchmark: str, task_id: str) -> Problem:
    return Problem(benchmark, task_id, prompt="", tests="", entry_point="f", reference="")


def test_records_count_as_evalplus_does(evalplus_doc: dict[str, Any]) -> None:
    assert evalplus_results.looks_like(evalplus_doc)
    found = evalplus_results.read(evalplus_doc)
    assert found.plus and found.dataset_hash == evalplus_doc["hash"] and found.date == evalplus_doc["date"]
    records = found.records["humanevalplus"]
    assert list(found.records) == ["humanevalplus"] and len(records) == 164
    assert list(records)[:3] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]  # dataset order
    assert [records[f"HumanEval/{i}"]["c_base"] for i in range(6)] == BASE_C
    assert [records[f"HumanEval/{i}"]["c"] for i in range(6)] == PLUS_C
    assert sum(r["c_base"] for r in records.values()) == 267 and sum(r["c"] for r in records.values()) == 236
    # task ids in the order evalplus wrote them (as they finished), MBPP+ and HumanEval+ mixed
    ev = evalplus_doc["eval"]
    shuffled = {"date": "d", "hash": "h", "eval": {"Mbpp/12": ev["HumanEval/0"], "Mbpp/2": ev["HumanEval/1"],
                                                   "HumanEval/3": ev["HumanEval/3"]}}
    found = evalplus_results.read(shuffled)
    assert {b: list(r) for b, r in found.records.items()} == {"humanevalplus": ["HumanEval/3"],
                                                               "mbppplus": ["Mbpp/2", "Mbpp/12"]}
    assert not evalplus_results.looks_like({"problems": {}, "eval": {}})  # a results file of this plugin's


def test_an_evalplus_file_as_baseline(evalplus_doc: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(evalplus_doc))
    baseline = gate.ResultsFileBaseline(path)
    assert baseline.covers(problem("humanevalplus", "HumanEval/1"))
    assert not baseline.covers(problem("humaneval", "HumanEval/1"))  # HumanEval's own tests are another benchmark
    assert baseline.record(problem("humanevalplus", "HumanEval/1")) == {"n": 3, "c": 1, "c_base": 2}
    [reason] = baseline.incompatibilities({"temperature": 0.0}, {"humanevalplus": "sha256:..."})
    assert reason.startswith("an evalplus eval_results.json records neither")

    base_only = json.loads(json.dumps(evalplus_doc))
    for samples in base_only["eval"].values():
        for s in samples:
            s["plus_status"] = None
    path.write_text(json.dumps(base_only))
    with pytest.raises(gate.GateError, match="evaluated with --base-only: it has no plus-level verdicts"):
        gate.ResultsFileBaseline(path)
    path.write_text(json.dumps({"date": "d", "hash": "h", "eval": {"HumanEval/0": [{"base_status": "passed"}]}}))
    with pytest.raises(gate.GateError, match="not a usable evalplus results file: HumanEval/0: sample #0 has no"):
        gate.ResultsFileBaseline(path)


def test_gate_against_an_evalplus_baseline(pytester: pytest.Pytester, bench_dirs: Path,
                                           evalplus_doc: dict[str, Any]) -> None:
    """HumanEval+ against evalplus's own verdicts: refused unless forced (nothing in the file says
    under which data and settings it was judged); forced, compared at the plus level."""
    (pytester.path / "eval_results.json").write_text(json.dumps(evalplus_doc))
    ids = [f"benchmarks/humanevalplus/test_humanevalplus.py::test_humanevalplus[HumanEval_{i}]" for i in range(6)]
    common = [*ids, "--codeeval-baseline=eval_results.json", "-p", "no:cacheprovider"]
    refused = pytester.runpytest(*common, "--codeeval-model=reference")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*--codeeval-baseline=*eval_results.json: not comparable with this run: an evalplus "
                                  "eval_results.json records neither*(--codeeval-baseline-force compares anyway)"])

    passed = pytester.runpytest(*common, "--codeeval-model=reference", "--codeeval-baseline-force", "--codeeval-json=r.json")
    assert passed.ret == 0
    compared = json.loads((pytester.path / "r.json").read_text())["gate"]["baseline"]
    assert compared["benchmarks"]["humanevalplus"]["baseline_pass@1"] == float(Fraction(sum(PLUS_C), 18))
    assert [compared["problems"]["humanevalplus"][f"HumanEval/{i}"]["c"] for i in range(6)] == PLUS_C

    # every sample wrong: six problems worse, none significantly alone, the aggregate is
    write_jsonl(pytester.path / "wrong.jsonl", [{"task_id": f"HumanEval/{i}", "completion": "    return None\n"}
                                                for i in range(6) for _ in range(3)])
    regressed = pytester.runpytest(*common, "--codeeval-generations=wrong.jsonl", "--codeeval-baseline-force")
    assert regressed.ret == gate.EXIT_REGRESSION
    regressed.stdout.fnmatch_lines(["codeeval gate FAILED (exit 11): regression against *eval_results.json: "
                                    "humanevalplus pass@1 0.0000 vs baseline 0.4444*p = 0.016 < 0.025*"])
