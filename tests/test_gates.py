"""End-to-end: regression gates (thresholds, baseline), their exit statuses, items and files."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import gate, metrics
from tests.conftest import BASE, N, REGRESSED, humaneval_ids, write_counts, write_jsonl

# NOISY: one up, one down, one 3/10 -> 0/10 (not significant alone: Fisher p = 0.105)
NOISY = [10, 10, 0, 0, 6, 7, 8, 7, 0, 3, 10, 10] * 2
# SLIPPED: a uniform small drop (0.05 on average): significant in aggregate, no problem significant alone
SLIPPED = [10, 10, 0, 0, 5, 5, 7, 7, 2, 2, 10, 10] * 2
UNSOLVED_IN_BOTH = {"HumanEval/2", "HumanEval/3", "HumanEval/14", "HumanEval/15"}
SCOPE = " [gated on humaneval: 24 selected of 164 problems]"  # what every gate line of the fixtures stands on


@pytest.fixture
def gated(pytester: pytest.Pytester, bench_dir: Path, humaneval_records: list[dict[str, Any]], baseline_json: Path):
    """A pytester directory with the baseline and a function writing a candidate's samples."""
    shutil.copy(baseline_json, pytester.path / "base.json")

    def candidate(counts: list[int], name: str = "cand.jsonl") -> str:
        write_counts(pytester.path / name, humaneval_records, counts)
        return f"--codeeval-generations={name}"

    return candidate


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The gate fixtures' 24 problems, selected by node id (a gate counts only what was selected)."""
    return pytester.runpytest(*humaneval_ids(), "-p", "no:cacheprovider", "-rfx", *args)


def results(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    return json.loads((pytester.path / name).read_text())


def gate_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("codeeval gate")]


# -- the results file: intervals and data fingerprints ----------------------------------------
def test_base_run_records_intervals_and_fingerprint(baseline_json: Path) -> None:
    from pytest_codeeval import benchmarks, stats

    doc = json.loads(baseline_json.read_text())
    counts = [(N, c) for c in BASE]
    # 24 selected problems: a score of the selection, kept apart from the benchmark's (absent)
    assert "humaneval" not in doc and doc["complete"] is True
    scores = doc["partial"]["humaneval"]
    assert scores["pass@1"] == metrics.mean_pass_at_k(counts, 1)
    ci = doc["summary"]["humaneval"]["ci"]
    assert set(ci) == {"pass@1", "pass@10"}  # the ks reported, no more
    assert ci["pass@1"] == list(stats.pass_at_k_ci(counts, 1))
    assert ci["pass@1"][0] < scores["pass@1"] < ci["pass@1"][1]
    assert ci["pass@10"][0] < scores["pass@10"] < ci["pass@10"][1]
    assert doc["datasets"]["humaneval"]["fingerprint"] == benchmarks.load("humaneval", None).fingerprint
    assert doc["datasets"]["humaneval"]["problems"] == 164
    assert "gate" not in doc  # no gate configured


@pytest.mark.parametrize("xdist", [False, True])
def test_summary_shows_intervals_identically_serial_and_xdist(pytester: pytest.Pytester, gated, xdist: bool) -> None:
    extra = ["-n", "2"] if xdist else []
    result = run(pytester, gated(BASE), "--codeeval-json=r.json", *extra)
    doc = results(pytester)
    lo, hi = doc["summary"]["humaneval"]["ci"]["pass@1"]
    result.stdout.re_match_lines([r"humaneval\s+24\s+20\s+240\s+10\s+0\.6167\s+0\.8333\s+-",
                                  rf"\s+95% CI\s+{lo:.4f}-{hi:.4f}\s+\d\.\d{{4}}-\d\.\d{{4}}$",
                                  r"note: CI: percentile bootstrap over problems, 2000 resamples, seed \d+, 95% two-sided"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # no gate: unsolved problems fail the run, as before


# -- threshold gate -----------------------------------------------------------------------------
def test_threshold_met_passes_despite_unsolved_problems(pytester: pytest.Pytester, gated) -> None:
    result = run(pytester, gated(BASE), "--codeeval-fail-under=humaneval:pass@1=0.6",
                 "--codeeval-fail-under=humaneval:pass@10=0.8", "--codeeval-json=r.json")
    result.assert_outcomes(passed=20, failed=4)  # the unsolved problems still show as failed items
    assert result.ret == 0
    assert gate_lines(result) == [
        "codeeval gate passed: humaneval pass@1 0.6167 (95% CI {:.4f}-{:.4f}) >= 0.6; humaneval pass@10 0.8333 "
        "(95% CI {:.4f}-{:.4f}) >= 0.8".format(*results(pytester)["summary"]["humaneval"]["ci"]["pass@1"],
                                                 *results(pytester)["summary"]["humaneval"]["ci"]["pass@10"]) + SCOPE]
    assert results(pytester)["gate"]["exit_status"] == 0


@pytest.mark.parametrize("xdist", [False, True])
def test_threshold_missed_exits_10_with_one_line(pytester: pytest.Pytester, gated, xdist: bool) -> None:
    extra = ["-n", "2"] if xdist else []
    result = run(pytester, gated(BASE), "--codeeval-fail-under=humaneval:pass@1=0.62",
                 "--codeeval-fail-under=humaneval:pass@10=0.8", "--codeeval-json=r.json", *extra)
    assert result.ret == gate.EXIT_THRESHOLD == 10
    lines = gate_lines(result)
    assert len(lines) == 1 and lines[0].startswith("codeeval gate FAILED (exit 10): below threshold: humaneval pass@1 0.6167 (95% CI ")
    assert lines[0].endswith(") < 0.62" + SCOPE)  # names only what fell short
    doc = results(pytester)
    assert doc["gate"]["exit_status"] == 10
    assert [t["passed"] for t in doc["gate"]["thresholds"]] == [False, True]


def test_threshold_on_a_benchmark_not_run_fails_closed(pytester: pytest.Pytester, gated) -> None:
    result = run(pytester, gated(BASE), "--codeeval-fail-under=mbpp:pass@1=0.1", "--codeeval-fail-under=humaneval:pass@100=0.1")
    assert result.ret == 10
    assert gate_lines(result) == ["codeeval gate FAILED (exit 10): below threshold: mbpp pass@1 not measured "
                                  "(no mbpp problem was judged); humaneval pass@100 not measured (needs n >= 100 "
                                  "samples per problem, n = 10)" + SCOPE]


@pytest.mark.parametrize("value, message", [
    ("humaneval:pass@1", "expected BENCHMARK:pass@K=VALUE such as humaneval:pass@1=0.30, got 'humaneval:pass@1'"),
    ("humaneval:pass@1=1.5", "expected k >= 1 and a value between 0 and 1, got 'humaneval:pass@1=1.5'"),
])
def test_bad_threshold_is_a_usage_error(pytester: pytest.Pytester, bench_dir: Path, value: str, message: str) -> None:
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference", f"--codeeval-fail-under={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --codeeval-fail-under: {message}"])


def test_other_failures_still_fail_a_passing_gate(pytester: pytest.Pytester, gated) -> None:
    pytester.makepyfile(test_plain="def test_broken():\n    assert 1 == 2\n")
    result = pytester.runpytest(*humaneval_ids(), "test_plain.py", "-p", "no:cacheprovider", gated(BASE),
                                "--codeeval-fail-under=humaneval:pass@1=0.5")
    result.assert_outcomes(passed=20, failed=5)
    assert gate_lines(result)[0].startswith("codeeval gate passed")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


# -- coverage: a gate passes only on every selected problem judged in full ----------------------
@pytest.mark.parametrize("xdist", [False, True])
def test_a_gate_over_a_partial_file_fails_closed(pytester: pytest.Pytester, bench_dir: Path,
                                                 humaneval_records: list[dict[str, Any]], xdist: bool) -> None:
    """The issue's run: right samples for 6 of HumanEval's 164 problems, a 0.9 bar. The score
    of the 6 is 1.0, but 158 problems were never judged: the gate fails (exit 12) saying so, and
    the results file keeps the 6-problem score away from the benchmark's key."""
    write_jsonl(pytester.path / "six.jsonl", [{"task_id": r["task_id"], "completion": r["canonical_solution"]}
                                              for r in humaneval_records[:6]])
    result = pytester.runpytest("benchmarks/humaneval", "-p", "no:cacheprovider", "--codeeval-generations=six.jsonl",
                                "--codeeval-fail-under=humaneval:pass@1=0.9", "--codeeval-json=r.json",
                                *(["-n", "2"] if xdist else []))
    result.assert_outcomes(passed=6, skipped=158)
    assert result.ret == gate.EXIT_INCOMPLETE == 12
    assert gate_lines(result) == [
        "codeeval gate FAILED (exit 12): not every selected problem was judged in full: humaneval: 158 of 164 "
        "selected problems not judged; 158 skipped: HumanEval/6, HumanEval/7, HumanEval/8, HumanEval/9, "
        f"HumanEval/10 and 153 more (no samples for HumanEval/6 in {pytester.path / 'six.jsonl'})"]
    result.stdout.fnmatch_lines(["note: over the problems judged only, not gated: humaneval pass@1 1.0000 * >= 0.9",
                                 ])
    result.stdout.fnmatch_lines(["note: humaneval: pass@k over the 6 problems judged only, not the benchmark's score"])
    doc = results(pytester)
    assert doc["complete"] is False and doc["stopped"] is None
    assert "humaneval" not in doc and doc["partial"] == {"humaneval": {"pass@1": 1.0}}
    cov = doc["summary"]["humaneval"]["coverage"]
    assert {k: cov[k] for k in ("problems_in_benchmark", "selected", "judged", "judged_in_full", "samples_per_problem",
                                "complete", "whole_benchmark")} == {
        "problems_in_benchmark": 164, "selected": 164, "judged": 6, "judged_in_full": 6, "samples_per_problem": 1,
        "complete": False, "whole_benchmark": False}
    assert cov["not_judged"] == [f"HumanEval/{i}" for i in range(6, 164)]
    assert doc["gate"]["exit_status"] == 12 and doc["gate"]["thresholds"][0]["passed"] is True


def test_a_complete_selection_passes_and_says_what_it_gated_on(pytester: pytest.Pytester, bench_dir: Path,
                                                               humaneval_records: list[dict[str, Any]]) -> None:
    """The same file with exactly its 6 problems selected (node ids): complete, gated, passed."""
    write_jsonl(pytester.path / "six.jsonl", [{"task_id": r["task_id"], "completion": r["canonical_solution"]}
                                              for r in humaneval_records[:6]])
    result = pytester.runpytest(*humaneval_ids(6), "-p", "no:cacheprovider", "--codeeval-generations=six.jsonl",
                                "--codeeval-fail-under=humaneval:pass@1=0.9", "--codeeval-json=r.json")
    assert result.ret == 0
    assert gate_lines(result) == ["codeeval gate passed: humaneval pass@1 1.0000 (95% CI 1.0000-1.0000) >= 0.9 "
                                  "[gated on humaneval: 6 selected of 164 problems]"]
    doc = results(pytester)
    assert doc["complete"] is True and doc["summary"]["humaneval"]["coverage"]["whole_benchmark"] is False
    assert "humaneval" not in doc and doc["partial"]["humaneval"]["pass@1"] == 1.0  # a selection's score


def test_fewer_samples_than_n_fail_the_gate(pytester: pytest.Pytester, gated) -> None:
    """``--codeeval-n=20`` over a file of 10 per problem: judged, but not in full."""
    result = run(pytester, gated(BASE), "--codeeval-n=20", "--codeeval-fail-under=humaneval:pass@1=0.1",
                 "--codeeval-json=r.json")
    assert result.ret == 12
    [line, note] = [x for x in result.stdout.lines if x.startswith(("codeeval gate", "note: over"))]
    assert line == ("codeeval gate FAILED (exit 12): not every selected problem was judged in full: humaneval: 24 "
                    "problem(s) judged with fewer than n = 20 samples: HumanEval/0 (10), HumanEval/1 (10), "
                    "HumanEval/2 (10), HumanEval/3 (10), HumanEval/4 (10) and 19 more")
    assert note.startswith("note: over the problems judged only, not gated: humaneval pass@1 0.6167")
    cov = results(pytester)["summary"]["humaneval"]["coverage"]
    assert cov["judged"] == 24 and cov["judged_in_full"] == 0 and cov["samples_per_problem"] == 20
    assert cov["short"] == {f"HumanEval/{i}": 10 for i in range(24)}


@pytest.mark.parametrize("xdist", [False, True])
def test_a_run_stopped_early_fails_the_gate(pytester: pytest.Pytester, gated, xdist: bool) -> None:
    extra = ["-n", "2"] if xdist else []
    result = run(pytester, gated(BASE), "--codeeval-fail-under=humaneval:pass@1=0.1", "-x", "--codeeval-json=r.json",
                 *extra)
    assert result.ret == 12
    line = gate_lines(result)[0]
    assert line.startswith("codeeval gate FAILED (exit 12): not every selected problem was judged in full: the run "
                           "stopped early (stopping after 1 failures); humaneval: ")
    assert "selected problems not judged; " in line and "not run: HumanEval/" in line
    doc = results(pytester)
    assert doc["complete"] is False and doc["stopped"] == "stopping after 1 failures"
    assert "humaneval" not in doc


def test_an_interrupted_run_fails_the_gate(pytester: pytest.Pytester, gated) -> None:
    """Ctrl-C at the fourth problem: what was judged is written, the gate fails closed."""
    pytester.makeconftest("def pytest_runtest_call(item):\n"
                          "    if item.name.endswith('[HumanEval_3]'):\n"
                          "        raise KeyboardInterrupt\n")
    result = run(pytester, gated(BASE), "--codeeval-fail-under=humaneval:pass@1=0.1", "--codeeval-json=r.json")
    assert result.ret == 12
    line = gate_lines(result)[0]
    assert line.startswith("codeeval gate FAILED (exit 12): not every selected problem was judged in full: the run "
                           "stopped early (interrupted); humaneval: 21 of 24 selected problems not judged; 21 not run: "
                           "HumanEval/3, HumanEval/4"), line
    doc = results(pytester)
    assert doc["complete"] is False and list(doc["problems"]["humaneval"]) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]


# -- baseline gate ------------------------------------------------------------------------------
@pytest.mark.parametrize("xdist", [False, True])
def test_regression_fails_the_regressed_items_and_exits_11(pytester: pytest.Pytester, gated, baseline_json: Path,
                                                           xdist: bool) -> None:
    extra = ["-n", "2"] if xdist else []
    result = run(pytester, gated(REGRESSED), "--codeeval-baseline=base.json", "--codeeval-json=r.json", *extra)
    assert result.ret == gate.EXIT_REGRESSION == 11
    result.assert_outcomes(passed=18, failed=2, xfailed=4)
    failed = {line.split("[")[1].split("]")[0] for line in result.stdout.lines if line.startswith("FAILED")}
    assert failed == {"HumanEval_1", "HumanEval_13"}
    xfailed = {line.split("[")[1].split("]")[0] for line in result.stdout.lines if line.startswith("XFAIL")}
    assert xfailed == {t.replace("/", "_") for t in UNSOLVED_IN_BOTH}
    result.stdout.fnmatch_lines(["*HumanEval/1: regressed against the baseline: 0/10 passed, baseline 10/10 "
                                 "(one-sided Fisher p = 5.4e-06 < 0.001)*",
                                 "*HumanEval/2: unsolved, as in the baseline (0/10 in *base.json)*"])
    [line] = gate_lines(result)
    # 6 problems differ: -1, -0.1, -0.1 twice over; an exact sign-flip p of 1/64
    assert line == (f"codeeval gate FAILED (exit 11): regression against {pytester.path / 'base.json'}: humaneval "
                    f"pass@1 0.5167 vs baseline 0.6167 (-0.1000, 95% CI {line.split('95% CI ')[1].split(';')[0]}; "
                    "p = 0.016 < 0.025, tolerance 0; 24 problems paired); 2 problem(s) regressed: HumanEval/1, HumanEval/13"
                    + SCOPE)
    b = results(pytester)["gate"]["baseline"]["benchmarks"]["humaneval"]
    assert b["p"] == 1 / 64 and b["aggregate_regressed"] is True and b["regressed_problems"] == ["HumanEval/1", "HumanEval/13"]
    assert b["problems"] == 24 and b["baseline_pass@1"] == 74 / 120 and abs(b["diff"] + 0.1) < 1e-12
    assert results(pytester)["gate"]["exit_status"] == 11
    # the baseline's side of every pair is kept (an in-session base model has no file of its own)
    pairs = results(pytester)["gate"]["baseline"]["problems"]["humaneval"]
    assert list(pairs) == [f"HumanEval/{i}" for i in range(24)]
    assert [pairs[f"HumanEval/{i}"]["c"] for i in range(24)] == BASE
    assert [t for t, v in pairs.items() if v["regressed"]] == ["HumanEval/1", "HumanEval/13"]


def test_noise_passes_and_unsolved_alone_does_not_fail(pytester: pytest.Pytester, gated) -> None:
    result = run(pytester, gated(NOISY), "--codeeval-baseline=base.json", "--codeeval-json=r.json")
    # HumanEval/8 and /20 went from 3/10 to 0/10: unsolved items, failed, but no significant regression
    result.assert_outcomes(passed=18, failed=2, xfailed=4)
    assert result.ret == 0
    [line] = gate_lines(result)
    assert line.startswith("codeeval gate passed: no regression against ")
    assert "p = 0.17 >= 0.025" in line  # 11 of the 64 sign patterns are as extreme
    verdicts = [line for line in result.stdout.lines if "regressed against" in line]
    assert verdicts == []


def test_tolerance_is_a_margin_on_the_aggregate(pytester: pytest.Pytester, gated) -> None:
    cand = gated(SLIPPED)
    strict = run(pytester, cand, "--codeeval-baseline=base.json")
    assert strict.ret == 11  # 12 problems each 1 sample worse: p = 1/4096
    strict.assert_outcomes(passed=20, xfailed=4)  # no problem regressed on its own
    assert "p = 0.00024 < 0.025, tolerance 0;" in gate_lines(strict)[0]
    lenient = run(pytester, cand, "--codeeval-baseline=base.json", "--codeeval-tolerance=0.05")
    assert lenient.ret == 0  # a drop of exactly 0.05 is not more than the tolerance
    assert "tolerance 0.05;" in gate_lines(lenient)[0] and gate_lines(lenient)[0].startswith("codeeval gate passed")


def test_regression_and_threshold_together_exit_11_and_say_both(pytester: pytest.Pytester, gated) -> None:
    result = run(pytester, gated(REGRESSED), "--codeeval-baseline=base.json", "--codeeval-fail-under=humaneval:pass@1=0.9")
    assert result.ret == 11
    lines = gate_lines(result)
    assert lines[0].startswith("codeeval gate FAILED (exit 10): below threshold: humaneval pass@1 0.5167")
    assert lines[1].startswith("codeeval gate FAILED (exit 11): regression against")


def test_baseline_sharing_no_problem_fails_closed(pytester: pytest.Pytester, gated, humaneval_records) -> None:
    rows = [{"task_id": "HumanEval/100", "completion": humaneval_records[100]["canonical_solution"]}] * N
    write_jsonl(pytester.path / "other.jsonl", rows)
    result = pytester.runpytest("benchmarks/humaneval/test_humaneval.py::test_humaneval[HumanEval_100]", "-p",
                                "no:cacheprovider", "--codeeval-generations=other.jsonl", "--codeeval-baseline=base.json")
    assert result.ret == 11
    assert gate_lines(result) == [f"codeeval gate FAILED (exit 11): nothing compared: no judged problem has a record "
                                  f"in the baseline {pytester.path / 'base.json'} [gated on humaneval: 1 selected of 164 problems]"]
    result.stdout.fnmatch_lines(["note: 1 judged problem(s) have no baseline record and were not compared"])


def test_incomparable_baselines_are_refused_unless_forced(pytester: pytest.Pytester, gated) -> None:
    cand = gated(REGRESSED)
    result = run(pytester, cand, "--codeeval-baseline=base.json", "--codeeval-n=5", "--codeeval-timeout=4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --codeeval-baseline={pytester.path / 'base.json'}: not comparable with this "
                                 "run: n_samples 10 vs 5; timeout null vs 4.0 (--codeeval-baseline-force compares anyway)"])
    forced = run(pytester, cand, "--codeeval-baseline=base.json", "--codeeval-n=5", "--codeeval-baseline-force")
    assert forced.ret == 11  # n = 5 against n = 10 still pairs up: the collapses are there
    # other data: the fingerprint recorded with the baseline no longer matches
    doc = json.loads((pytester.path / "base.json").read_text())
    doc["datasets"]["humaneval"]["fingerprint"] = "sha256:" + "0" * 64
    (pytester.path / "tampered.json").write_text(json.dumps(doc))
    result = run(pytester, cand, "--codeeval-baseline=tampered.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --codeeval-baseline=*tampered.json: not comparable with this run: humaneval "
                                 "data differ (fingerprint sha256:000000000000 vs sha256:*"])
    # a results file without per-problem records cannot be a baseline
    (pytester.path / "bigcode.json").write_text(json.dumps({"humaneval": {"pass@1": 0.5}, "config": {}}))
    result = run(pytester, cand, "--codeeval-baseline=bigcode.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --codeeval-baseline: *bigcode.json: no per-problem records*"])


def test_model_identity_may_differ_but_settings_may_not(pytester: pytest.Pytester, gated) -> None:
    doc = json.loads((pytester.path / "base.json").read_text())
    doc["config"].update({"model": "bigcode/starcoderbase-1b", "peft_model": None, "precision": "fp16",
                          "load_in_4bit": False})
    (pytester.path / "base-model.json").write_text(json.dumps(doc))
    assert run(pytester, gated(BASE), "--codeeval-baseline=base-model.json").ret == 0
    doc["config"]["temperature"] = 0.8
    (pytester.path / "hot.json").write_text(json.dumps(doc))
    result = run(pytester, gated(BASE), "--codeeval-baseline=hot.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not comparable with this run: temperature 0.8 vs null (--codeeval-baseline-force*"])


# -- junit ------------------------------------------------------------------------------------
@pytest.mark.parametrize("xdist", [False, True])
def test_junit_has_n_c_and_pass_at_1_per_problem(pytester: pytest.Pytester, gated, xdist: bool) -> None:
    extra = ["-n", "2"] if xdist else []
    result = run(pytester, gated(REGRESSED), "--codeeval-baseline=base.json", "--junitxml=j.xml", *extra)
    assert result.ret == 11
    root = ET.parse(pytester.path / "j.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 24
    seen = 0
    for i, (base, cand) in enumerate(zip(BASE, REGRESSED)):
        props = {p.get("name"): p.get("value") for p in cases[f"test_humaneval[HumanEval_{i}]"].iter("property")}
        assert props["n"] == "10" and props["c"] == str(cand) and props["pass@1"] == str(cand / 10)
        assert props["baseline_c"] == str(base) and props["task_id"] == f"HumanEval/{i}"
        assert props["regressed"] == str(i in (1, 13))
        assert not any(v.startswith(("{", "[")) for v in props.values()), props  # no Python reprs
        seen += 1
    assert seen == 24
    assert cases["test_humaneval[HumanEval_1]"].find("failure") is not None
    assert cases["test_humaneval[HumanEval_2]"].find("skipped").get("type") == "pytest.xfail"
