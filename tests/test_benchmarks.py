"""MBPP, MBPP sanitized, HumanEval+, MBPP+ and declared benchmarks, end to end.

The reference solutions must pass every problem: that checks the data, the program layout
(code, setup, asserts), evalplus's input conversions and comparison rules, and the ground truth.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tests.conftest import write_jsonl


def results(pytester: pytest.Pytester, name: str = "r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


@pytest.mark.parametrize(
    "bench, count, extra",
    [("mbpp", 500, []), ("mbpp", 974, ["--codeeval-mbpp-split=full"]), ("mbpp_sanitized", 427, [])],
)
def test_mbpp_references_pass_every_problem(pytester: pytest.Pytester, bench_dirs: Path, bench: str,
                                            count: int, extra: list[str]) -> None:
    result = pytester.runpytest(f"benchmarks/{bench}", "--codeeval-model=reference", "--codeeval-json=r.json",
                                "-p", "no:cacheprovider", *extra)
    result.assert_outcomes(passed=count)
    doc = results(pytester)
    assert doc[bench] == {"pass@1": 1.0}
    ids = list(doc["problems"][bench])
    if bench == "mbpp" and not extra:
        assert ids[0] == "Mbpp/11" and ids[-1] == "Mbpp/510"  # the test split, in order
    assert doc["config"]["timeouts"][bench] == 10.0  # task 123's reference needs ~6 s


@pytest.mark.parametrize("bench, count", [("humanevalplus", 164), ("mbppplus", 378)])
def test_plus_references_pass_base_and_plus(pytester: pytest.Pytester, bench_dirs: Path, bench: str,
                                            count: int) -> None:
    result = pytester.runpytest(f"benchmarks/{bench}", "--codeeval-model=reference", "--codeeval-json=r.json",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=count)
    result.stdout.re_match_lines([rf"{bench}\s+{count}\s+{count}\s+{count}\s+1\s+1\.0000",
                                  rf"{bench} \(base\)\s+{count}\s+{count}\s+{count}\s+1\s+1\.0000"])
    doc = results(pytester)
    assert doc[bench] == {"pass@1": 1.0} and doc[f"{bench}-base"] == {"pass@1": 1.0}
    assert all(p["c_base"] == 1 for p in doc["problems"][bench].values())


def test_base_and_plus_are_judged_apart(pytester: pytest.Pytester, bench_dirs: Path, data_dir: Path) -> None:
    """A solution right on the original inputs but wrong on EvalPlus's extra ones passes base only."""
    with gzip.open(data_dir / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz", "rt") as f:
        record = json.loads(f.readline())  # HumanEval/0
    base_calls = len(record["base_input"])
    sneaky = (
        record["prompt"] + record["canonical_solution"]
        + "\n_calls = [0]\n_right = has_close_elements\n\n"
        "def has_close_elements(numbers, threshold):\n"
        "    _calls[0] += 1\n"
        f"    return _right(numbers, threshold) if _calls[0] <= {base_calls} else not _right(numbers, threshold)\n"
    )
    write_jsonl(pytester.path / "s.jsonl", [
        {"task_id": "HumanEval/0", "solution": sneaky},
        {"task_id": "HumanEval/0", "solution": record["prompt"] + record["canonical_solution"]},
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
    ])
    result = pytester.runpytest("benchmarks/humanevalplus", "--codeeval-generations=s.jsonl", "--codeeval-json=r.json",
                                "-p", "no:cacheprovider", "--codeeval-k=1,2,3")
    result.assert_outcomes(passed=1, skipped=163)
    doc = results(pytester)
    problem = doc["problems"]["humanevalplus"]["HumanEval/0"]
    assert problem == {"n": 3, "c": 1, "c_base": 2, "outcomes": ["failed", "passed", "failed"]}
    assert doc["partial"]["humanevalplus"]["pass@1"] == pytest.approx(1 / 3)
    assert doc["partial"]["humanevalplus-base"]["pass@1"] == pytest.approx(2 / 3)


def test_missing_data_skips_with_what_to_get(pytester: pytest.Pytester, bench_dirs: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    empty = pytester.mkdir("nodata")
    monkeypatch.setenv("CODEEVAL_DATA", str(empty))
    result = pytester.runpytest("benchmarks/mbpp", "benchmarks/mbppplus", "--codeeval-model=reference", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        f"SKIPPED [[]1[]] benchmarks/mbpp/test_mbpp.py:*: MBPP data not found: put google-research's mbpp/mbpp.jsonl in {empty}/mbpp*",
    ])
    result.stdout.fnmatch_lines([
        f"SKIPPED [[]1[]] benchmarks/mbppplus/test_mbppplus.py:*: mbppplus data not found: put EvalPlus's release file MbppPlus-v0.2.0.jsonl.gz in {empty}/evalplus*",
    ])


def test_several_benchmarks_report_separately(pytester: pytest.Pytester, bench_dirs: Path) -> None:
    result = pytester.runpytest("benchmarks/humaneval", "benchmarks/mbpp_sanitized", "benchmarks/example",
                                "--codeeval-model=reference", "--codeeval-json=r.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=164 + 427 + 4)
    result.stdout.re_match_lines([r"example\s+4\s+4", r"humaneval\s+164\s+164", r"mbpp_sanitized\s+427\s+427"])
    doc = results(pytester)
    not_benchmarks = ("format", "config", "summary", "problems", "environment", "complete", "datasets", "stopped")
    assert {k for k in doc if k not in not_benchmarks} == {"example", "humaneval", "mbpp_sanitized"}
    assert set(doc["datasets"]) == {"example", "humaneval", "mbpp_sanitized"}
    assert all(d["fingerprint"].startswith("sha256:") for d in doc["datasets"].values())
    assert doc["datasets"]["mbpp_sanitized"]["problems"] == 427
    assert doc["config"]["tasks"] == "example,humaneval,mbpp_sanitized"


def test_shared_ids_go_to_every_variant_the_run_names(pytester: pytest.Pytester, bench_dirs: Path) -> None:
    """MBPP, MBPP sanitized and MBPP+ share "Mbpp/N" ids: a JSONL file of samples is judged on
    each of them that the run names, and only on those."""
    right = "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n"
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": "Mbpp/2", "completion": right}])
    result = pytester.runpytest("benchmarks/mbpp_sanitized", "--codeeval-generations=s.jsonl", "--codeeval-json=r.json")
    result.assert_outcomes(passed=1, skipped=426)
    assert set(results(pytester)["problems"]) == {"mbpp_sanitized"}
    result = pytester.runpytest("benchmarks/mbpp_sanitized", "benchmarks/mbppplus", "--codeeval-generations=s.jsonl",
                                "--codeeval-json=r.json")
    result.assert_outcomes(passed=2, skipped=426 + 377)
    doc = results(pytester)
    assert doc["problems"]["mbpp_sanitized"]["Mbpp/2"]["c"] == 1
    assert doc["problems"]["mbppplus"]["Mbpp/2"] == {"n": 1, "c": 1, "c_base": 1, "outcomes": ["passed"]}


# -- declared benchmarks ---------------------------------------------------------------------
def test_the_example_declaration_runs_and_replays(pytester: pytest.Pytester, bench_dirs: Path) -> None:
    result = pytester.runpytest("benchmarks/example", "--codeeval-model=reference", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["benchmarks/example/codeeval.toml::test_example[[]example_digit_sum[]] PASSED 1/1*"])
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": "example/digit_sum", "completion": "    return sum(map(int, str(n)))\n"}])
    result = pytester.runpytest("benchmarks/example", "--codeeval-generations=s.jsonl")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(["first failing sample (#0): failed: ValueError*"])


def declare(pytester: pytest.Pytester, toml: str, rows: list[dict] | None = None) -> None:
    folder = pytester.mkdir("custom")
    (folder / "codeeval.toml").write_text(toml)
    write_jsonl(folder / "data.jsonl", rows if rows is not None else [
        {"task_id": "t/1", "prompt": "def double(x):\n", "reference": "def double(x):\n    return 2 * x\n",
         "asserts": ["assert double(2) == 4"], "entry_point": "double",
         "check": "def check(f):\n    assert f(3) == 6\n", "inputs": [[1], [5]], "outputs": [2, 10]}])


@pytest.mark.parametrize("style", ["asserts", "check", "io"])
def test_each_test_style_passes_the_reference_and_fails_a_wrong_program(pytester: pytest.Pytester, style: str) -> None:
    declare(pytester, f'[benchmark]\nname = "custom"\ndata = "data.jsonl"\ntests = "{style}"\n')
    result = pytester.runpytest("custom", "--codeeval-model=reference")
    result.assert_outcomes(passed=1)
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": "t/1", "completion": "    return x + 1\n"}])
    result = pytester.runpytest("custom", "--codeeval-generations=s.jsonl")
    result.assert_outcomes(failed=1)


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[benchmark]\ndata = "data.jsonl"\n', "codeeval.toml: [benchmark] name is required (a string)"),
        ('[benchmark]\nname = "c"\ndata = "data.jsonl"\ncolour = 1\n', "codeeval.toml: unknown key 'colour' in [benchmark]*"),
        ('[benchmark]\nname = "c"\ndata = "data.jsonl"\ntests = "vibes"\n', "codeeval.toml: [benchmark] tests must be one of asserts, check, io, not 'vibes'"),
        ('[benchmark]\nname = "c"\ndata = "nope.jsonl"\n', "codeeval.toml: [benchmark] data file 'nope.jsonl' not found*"),
        ('[benchmark]\nname = "c"\ndata = "data.jsonl"\ntimeout = -1\n', "codeeval.toml: [benchmark] timeout must be a positive number of seconds, not -1"),
        ('[benchmark]\nname = "c"\ndata = "data.jsonl"\n[fields]\nasserts = "tests"\n', "*data.jsonl: record 1 lacks the field 'tests' (mapped from 'asserts' in codeeval.toml)"),
        ('[benchmark\nname = "c"\n', "codeeval.toml: not valid TOML*"),
    ],
)
def test_declaration_defects_are_one_line_collection_errors(pytester: pytest.Pytester, toml: str, message: str) -> None:
    declare(pytester, toml)
    result = pytester.runpytest("custom", "--codeeval-model=reference")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # the message is literal but for "*" (anything): [benchmark] must not be a character class
    result.stdout.re_match_lines([".*" + re.escape(message).replace(r"\*", ".*") + "$"])
    assert "Traceback" not in result.stdout.str()
