"""The ``codeeval`` console script: table, plot, diff."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import pytest_codeeval
from pytest_codeeval import cli, metrics, stats
from tests.conftest import BASE, REGRESSED, REPO

# two rows of the seed's results table, as bigcode-evaluation-harness metric files
STARCODER = {"humaneval": {"pass@1": 0.158, "pass@10": 0.187, "pass@100": 0.207},
             "mbpp": {"pass@1": 0.218, "pass@10": 0.283, "pass@100": 0.338},
             "config": {"model": "bigcode/starcoderbase-1b", "temperature": 0.1, "n_samples": 100}}
STARCODER_SFT = {"humaneval": {"pass@1": 0.178, "pass@10": 0.21}, "config": {"model": "./sft"}}


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def codeeval(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_table_of_two_result_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "StarCoderBase-1B.json", STARCODER)
    b = write(tmp_path / "StarCoderBase-1B-SFT.json", STARCODER_SFT)
    status, out, _ = codeeval("table", a, b, capsys=capsys)
    assert status == 0
    assert out == (
        "| dataset | humaneval | humaneval | humaneval | mbpp | mbpp | mbpp |\n"
        "|---|---|---|---|---|---|---|\n"
        "| metric | pass@1 | pass@10 | pass@100 | pass@1 | pass@10 | pass@100 |\n"
        "| StarCoderBase-1B | 15.8 | 18.7 | 20.7 | 21.8 | 28.3 | 33.8 |\n"
        "| StarCoderBase-1B-SFT | 17.8 | 21.0 | — | — | — | — |\n")
    status, out, _ = codeeval("table", "--fraction", "--k", "1", f"base={a}", f"sft={b}", capsys=capsys)
    assert out.splitlines()[3:] == ["| base | 0.158 | 0.218 |", "| sft | 0.178 | — |"]


def test_table_merges_files_of_one_label_and_refuses_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    he = write(tmp_path / "evaluation_humaneval.json", {"humaneval": {"pass@1": 0.5}, "config": {}})
    mb = write(tmp_path / "evaluation_mbpp.json", {"mbpp": {"pass@1": 0.25}, "config": {}})
    status, out, _ = codeeval("table", f"M={he}", f"M={mb}", capsys=capsys)
    assert status == 0 and out.splitlines()[3:] == ["| M | 50.0 | 25.0 |"]
    status, out, err = codeeval("table", f"M={he}", f"M={he}", capsys=capsys)
    assert status == 2 and out == ""
    assert err == f"codeeval table: error: two results for 'M' on humaneval: {he} and {he}; name the rows: LABEL=PATH\n"
    status, _, err = codeeval("table", str(tmp_path / "absent.json"), capsys=capsys)
    assert status == 2 and err == f"codeeval table: error: {tmp_path / 'absent.json'}: no such file\n"


def test_table_shows_recorded_intervals(baseline_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(baseline_json.read_text())
    lo, hi = doc["summary"]["humaneval"]["ci"]["pass@1"]
    status, out, _ = codeeval("table", "--ci", "--k", "1", f"base={baseline_json}", capsys=capsys)
    assert status == 0
    # the baseline judged 24 selected problems: its score is marked as not the benchmark's
    assert out.splitlines()[3:] == [f"| base | 61.7 ({100 * lo:.1f}–{100 * hi:.1f}) (a) |", "",
                                    "(a) base on humaneval: 24 of 164 problems judged, n = 10: partial, not the "
                                    "benchmark's score  "]


def coverage_doc(scores: dict[str, float], judged: int, n: int = 10, total: int = 164) -> dict[str, Any]:
    whole = judged == total
    return {**({"humaneval": scores} if whole else {"partial": {"humaneval": scores}}), "config": {},
            "summary": {"humaneval": {"coverage": {"problems_in_benchmark": total, "selected": judged, "judged": judged,
                                                   "judged_in_full": judged, "samples_per_problem": n,
                                                   "complete": True, "whole_benchmark": whole}}}}


def test_table_marks_rows_whose_coverage_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = write(tmp_path / "full.json", coverage_doc({"pass@1": 0.5}, 164))
    six = write(tmp_path / "six.json", coverage_doc({"pass@1": 1.0}, 6))
    n5 = write(tmp_path / "n5.json", coverage_doc({"pass@1": 0.45}, 164, n=5))
    bigcode = write(tmp_path / "bigcode.json", {"humaneval": {"pass@1": 0.4}, "config": {}})  # says nothing: unmarked
    status, out, _ = codeeval("table", full, six, n5, bigcode, capsys=capsys)
    assert status == 0
    assert out.splitlines()[3:] == [
        "| full | 50.0 |", "| six | 100.0 (a) |", "| n5 | 45.0 (b) |", "| bigcode | 40.0 |", "",
        "(a) six on humaneval: 6 of 164 problems judged, n = 10: partial, not the benchmark's score  ",
        "(b) n5 on humaneval: 164 of 164 problems judged, n = 5  "]
    # rows alike are not marked
    status, out, _ = codeeval("table", full, f"again={full}", capsys=capsys)
    assert "(a)" not in out and out.splitlines()[3:] == ["| full | 50.0 |", "| again | 50.0 |"]


def test_plot_marks_partial_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    full = write(tmp_path / "full.json", coverage_doc({"pass@1": 0.5}, 164))
    six = write(tmp_path / "six.json", coverage_doc({"pass@1": 1.0}, 6))
    rows = cli.rows_of([full, six])
    assert cli.marks_of(rows, cli.columns_of(rows, None)) == {
        ("six", "humaneval"): "six on humaneval: 6 of 164 problems judged, n = 10: partial, not the benchmark's score"}
    status, _, _ = codeeval("plot", full, six, "-o", str(tmp_path / "p.png"), capsys=capsys)
    assert status == 0 and png_size(tmp_path / "p.png")[0] >= 800


def candidate_doc(base: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(base))
    for i, c in enumerate(REGRESSED):
        doc["problems"]["humaneval"][f"HumanEval/{i}"].update(c=c)
    doc["partial"]["humaneval"]["pass@1"] = sum(REGRESSED) / 240
    return doc


def test_diff_lists_per_problem_changes_worst_first(baseline_json: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cand = write(tmp_path / "tuned.json", candidate_doc(json.loads(baseline_json.read_text())))
    status, out, _ = codeeval("diff", f"base={baseline_json}", cand, capsys=capsys)
    assert status == 0
    lines = out.splitlines()
    lo, hi = stats.bootstrap_ci([(c - b) / 10 for b, c in zip(BASE, REGRESSED)])
    assert lines[0] == "humaneval: 24 problems in both (base -> tuned)"
    assert lines[1] == ("  coverage differs: base 24 of 164 problems judged, n = 10: partial, not the benchmark's score; "
                        "tuned 24 of 164 problems judged, n = 10: partial, not the benchmark's score; compared on the "
                        "24 problems both judged")
    assert lines[2] == (f"  pass@1 0.6167 -> 0.5167 (-0.1000, 95% CI {lo:+.4f} to {hi:+.4f}; "
                        "one-sided sign-flip p: worse 0.016, better 1)")
    assert lines[3] == "  changed 6: 6 worse (2 significantly), 0 better (0 significantly); newly unsolved 2, newly solved 0"
    assert lines[4].split() == ["task_id", "base", "tuned", "change"]
    assert [line.split() for line in lines[5:11]] == [
        ["HumanEval/1", "10/10", "0/10", "-1.00", "*"], ["HumanEval/13", "10/10", "0/10", "-1.00", "*"],
        ["HumanEval/5", "6/10", "5/10", "-0.10"], ["HumanEval/7", "8/10", "7/10", "-0.10"],
        ["HumanEval/17", "6/10", "5/10", "-0.10"], ["HumanEval/19", "8/10", "7/10", "-0.10"]]
    assert lines[11] == "  * significant: per-problem Fisher exact test, two-sided, Bonferroni over 24 problems at alpha 0.05"
    status, out, _ = codeeval("diff", "--all", f"base={baseline_json}", cand, capsys=capsys)
    assert sum(1 for line in out.splitlines() if line.startswith("  HumanEval/")) == 24


def test_diff_compares_only_the_problems_both_judged(baseline_json: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A candidate that judged 6 of the baseline's 24: the aggregate is over those 6, never the
    candidate's own score against the baseline's."""
    doc = candidate_doc(json.loads(baseline_json.read_text()))
    doc["problems"]["humaneval"] = {t: r for i, (t, r) in enumerate(doc["problems"]["humaneval"].items()) if i < 6}
    doc["summary"]["humaneval"]["coverage"].update(judged=6, selected=6, judged_in_full=6)
    status, out, _ = codeeval("diff", f"base={baseline_json}", f"tuned={write(tmp_path / 't.json', doc)}", capsys=capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "humaneval: 6 problems in both (base -> tuned)"
    assert lines[1].startswith("  coverage differs: base 24 of 164 problems judged") and lines[1].endswith(
        "compared on the 6 problems both judged")
    six_base, six_cand = sum(BASE[:6]) / 60, sum(REGRESSED[:6]) / 60
    assert lines[2].startswith(f"  pass@1 {six_base:.4f} -> {six_cand:.4f} ")
    assert "  not compared: 18 problem(s) only in base, 0 only in tuned" in lines


def test_diff_warns_when_settings_differ(baseline_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = candidate_doc(json.loads(baseline_json.read_text()))
    doc["config"]["n_samples"] = 20
    status, out, _ = codeeval("diff", str(baseline_json), write(tmp_path / "t.json", doc), capsys=capsys)
    assert status == 0 and out.splitlines()[0] == "warning: evaluation settings differ: n_samples 10 vs 20"
    status, _, err = codeeval("diff", str(baseline_json), write(tmp_path / "bigcode.json", STARCODER), capsys=capsys)
    assert status == 2 and "no benchmark with per-problem records in both" in err


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_draws_curves_and_bars(baseline_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib.image

    cand = write(tmp_path / "tuned.json", candidate_doc(json.loads(baseline_json.read_text())))
    other = write(tmp_path / "StarCoderBase-1B.json", STARCODER)  # no per-problem records: reported points only
    out_png = tmp_path / "figs" / "fig.png"
    status, out, _ = codeeval("plot", f"base={baseline_json}", cand, other, "-o", str(out_png), capsys=capsys)
    assert status == 0 and out == f"wrote {out_png}\n"
    width, height = png_size(out_png)
    assert width >= 900 and height >= 900
    pixels = matplotlib.image.imread(out_png)[..., :3]
    assert pixels.std() > 0.05  # not a blank canvas
    # each row's colour (matplotlib's default cycle: blue, orange, green) is drawn
    for rgb in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)):
        close = (abs(pixels * 255 - rgb) < 3).all(axis=-1)
        assert close.sum() > 500, rgb


def test_console_script_is_declared_and_runs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["codeeval"] == "pytest_codeeval.cli:main"
    extras = project["optional-dependencies"]
    # matplotlib for the plot tests, directly or through the extra that installs it
    test_extra = " ".join(extras["test"])
    assert "matplotlib" in test_extra or ("plot]" in test_extra or "plot," in test_extra) and "matplotlib" in " ".join(extras["plot"])
    done = subprocess.run([sys.executable, "-m", "pytest_codeeval.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "{table,plot,diff}" in done.stdout
    done = subprocess.run([sys.executable, "-m", "pytest_codeeval.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == f"pytest-codeeval {pytest_codeeval.__version__}\n"


# -- table --format -------------------------------------------------------------------------------
def marked_rows(tmp_path: Path) -> list[str]:
    """Three rows over humaneval: a whole run with an interval, a 6-problem partial one (marked
    (a)), and a bigcode metric file that also has mbpp."""
    full = coverage_doc({"pass@1": 0.5, "pass@10": 0.75}, 164)
    full["summary"]["humaneval"]["ci"] = {"pass@1": [0.42, 0.58]}
    return [write(tmp_path / "full.json", full), f"six_problems={write(tmp_path / 'six.json', coverage_doc({'pass@1': 1.0}, 6))}",
            write(tmp_path / "bigcode.json", {"humaneval": {"pass@1": 0.4}, "mbpp": {"pass@1": 0.25}, "config": {}})]


SIX_NOTE = "six_problems on humaneval: 6 of 164 problems judged, n = 10: partial, not the benchmark's score"


def test_table_markdown_is_the_default_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = marked_rows(tmp_path)
    _, default, _ = codeeval("table", "--ci", *files, capsys=capsys)
    status, markdown, _ = codeeval("table", "--ci", "--format", "markdown", *files, capsys=capsys)
    assert status == 0 and markdown == default
    assert default.splitlines() == [
        "| dataset | humaneval | humaneval | mbpp |", "|---|---|---|---|", "| metric | pass@1 | pass@10 | pass@1 |",
        "| full | 50.0 (42.0–58.0) | 75.0 | — |", "| six_problems | 100.0 (a) | — | — |", "| bigcode | 40.0 | — | 25.0 |",
        "", f"(a) {SIX_NOTE}  "]


def test_table_as_csv_keeps_numbers_numeric_and_notes_per_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    status, out, _ = codeeval("table", "--format", "csv", "--ci", *marked_rows(tmp_path), capsys=capsys)
    assert status == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows == [
        ["model", "humaneval pass@1", "humaneval pass@1 ci_low", "humaneval pass@1 ci_high",
         "humaneval pass@10", "humaneval pass@10 ci_low", "humaneval pass@10 ci_high",
         "mbpp pass@1", "mbpp pass@1 ci_low", "mbpp pass@1 ci_high", "notes"],
        ["full", "50.0", "42.0", "58.0", "75.0", "", "", "", "", "", ""],
        ["six_problems", "100.0", "", "", "", "", "", "", "", "", f"(a) {SIX_NOTE}"],
        ["bigcode", "40.0", "", "", "", "", "", "25.0", "", "", ""]]
    status, out, _ = codeeval("table", "--format", "csv", "--fraction", "--k", "1", *marked_rows(tmp_path), capsys=capsys)
    assert out.splitlines()[:2] == ["model,humaneval pass@1,mbpp pass@1,notes", "full,0.500,,"]


def test_table_as_latex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = marked_rows(tmp_path)
    files[1] = files[1].replace("six_problems=", "six_problems_&_co=")  # LaTeX's specials are escaped
    status, out, _ = codeeval("table", "--format", "latex", "--ci", *files, capsys=capsys)
    assert status == 0
    note = SIX_NOTE.replace("six_problems", r"six\_problems\_\&\_co")
    assert out.splitlines() == [
        r"% needs \usepackage{booktabs}",
        r"\begin{tabular}{lrrr}",
        r"\toprule",
        r" & \multicolumn{2}{c}{humaneval} & \multicolumn{1}{c}{mbpp} \\",
        r"\cmidrule(lr){2-3} \cmidrule(lr){4-4}",
        r"model & pass@1 & pass@10 & pass@1 \\",
        r"\midrule",
        r"full & 50.0 (42.0--58.0) & 75.0 & --- \\",
        r"six\_problems\_\&\_co & 100.0\textsuperscript{(a)} & --- & --- \\",
        r"bigcode & 40.0 & --- & 25.0 \\",
        r"\bottomrule",
        r"\end{tabular}",
        "",
        r"\smallskip",
        r"{\footnotesize",
        rf"(a) {note}\par",
        "}"]


def test_table_as_json_carries_marks_and_coverage_as_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = marked_rows(tmp_path)
    status, out, _ = codeeval("table", "--format", "json", *files, capsys=capsys)
    assert status == 0
    doc = json.loads(out)
    assert doc["columns"] == [{"benchmark": "humaneval", "metric": "pass@1", "k": 1},
                              {"benchmark": "humaneval", "metric": "pass@10", "k": 10},
                              {"benchmark": "mbpp", "metric": "pass@1", "k": 1}]
    full, six, bigcode = doc["rows"]
    assert [r["label"] for r in doc["rows"]] == ["full", "six_problems", "bigcode"]
    assert full["files"] == [files[0]]
    # fractions as recorded (not the percent text), every recorded interval without --ci
    assert full["cells"][0] == {"benchmark": "humaneval", "metric": "pass@1", "k": 1, "value": 0.5, "ci": [0.42, 0.58],
                                "coverage": {"judged": 164, "problems_in_benchmark": 164, "samples_per_problem": 10,
                                             "partial": False},
                                "mark": None, "note": None}
    assert full["cells"][2]["value"] is None and full["cells"][2]["coverage"] is None
    assert six["cells"][0]["mark"] == "(a)" and six["cells"][0]["note"] == SIX_NOTE
    assert six["cells"][0]["coverage"] == {"judged": 6, "problems_in_benchmark": 164, "samples_per_problem": 10,
                                           "partial": True}
    assert six["cells"][1] == {"benchmark": "humaneval", "metric": "pass@10", "k": 10, "value": None, "ci": None,
                               "coverage": None, "mark": None, "note": None}  # nothing there to mark
    assert [c["value"] for c in bigcode["cells"]] == [0.4, None, 0.25]
    assert doc["notes"] == [{"mark": "(a)", "row": "six_problems", "benchmark": "humaneval", "note": SIX_NOTE}]


def test_table_format_must_be_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["table", "--format", "html", *marked_rows(tmp_path)])
    assert exc.value.code == 2 and "invalid choice: 'html'" in capsys.readouterr().err


# -- diff --fail-on-regression --------------------------------------------------------------------
def counts_doc(base: dict[str, Any], counts: list[int]) -> dict[str, Any]:
    doc = json.loads(json.dumps(base))
    for i, c in enumerate(counts):
        doc["problems"]["humaneval"][f"HumanEval/{i}"].update(c=c)
    return doc


def test_diff_fails_on_regression_only_when_asked(baseline_json: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cand = write(tmp_path / "tuned.json", candidate_doc(json.loads(baseline_json.read_text())))
    status, plain, _ = codeeval("diff", f"base={baseline_json}", cand, capsys=capsys)
    assert status == 0  # a report, as before
    status, out, _ = codeeval("diff", "--fail-on-regression", f"base={baseline_json}", cand, capsys=capsys)
    assert status == 1
    assert out.startswith(plain)  # the same report, then the verdict
    last = out.splitlines()[-1]
    assert last.startswith("regression check FAILED: tuned regressed against base: humaneval pass@1 0.5167 vs "
                           "baseline 0.6167 (-0.1000, 95% CI ")
    assert last.endswith("2 problem(s) regressed: HumanEval/1, HumanEval/13")
    # the same file on both sides: nothing to fail
    status, out, _ = codeeval("diff", "--fail-on-regression", str(baseline_json), str(baseline_json), capsys=capsys)
    assert status == 0 and out.splitlines()[-1].startswith("regression check passed: no regression of B against A: ")


def test_diff_regression_check_is_the_baseline_gates(baseline_json: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A uniform small drop: no problem is significant alone, the aggregate is (as the gate finds
    in test_gates.py); a noisy candidate passes; a tolerance above the drop passes it."""
    base = json.loads(baseline_json.read_text())
    slipped = write(tmp_path / "slipped.json", counts_doc(base, [10, 10, 0, 0, 5, 5, 7, 7, 2, 2, 10, 10] * 2))
    noisy = write(tmp_path / "noisy.json", counts_doc(base, [10, 10, 0, 0, 6, 7, 8, 7, 0, 3, 10, 10] * 2))
    [comparison] = cli.regression_check(cli.load_run(str(baseline_json)), cli.load_run(slipped))
    assert comparison.aggregate_regressed and not comparison.regressed_problems
    assert comparison.alpha == 0.05 / 2  # half of alpha for the aggregate, one benchmark
    status, out, _ = codeeval("diff", "--fail-on-regression", str(baseline_json), slipped, capsys=capsys)
    assert status == 1 and "regressed against" in out.splitlines()[-1]
    status, _, _ = codeeval("diff", "--fail-on-regression", str(baseline_json), noisy, capsys=capsys)
    assert status == 0
    status, _, _ = codeeval("diff", "--fail-on-regression", "--tolerance", "0.1", str(baseline_json), slipped, capsys=capsys)
    assert status == 0
    for bad in (["--tolerance", "1.5"], ["--alpha", "0"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(["diff", "--fail-on-regression", *bad, str(baseline_json), slipped])
        assert exc.value.code == 2


# -- evalplus's eval_results.json ---------------------------------------------------------------
# Written by evalplus 0.3.1 itself (`python -m evalplus.evaluate --dataset humaneval --samples
# samples.jsonl`, HUMANEVAL_OVERRIDE_PATH=HumanEvalPlus-v0.1.10.jsonl): 3 samples per problem,
# the reference, `return None`, and every third problem the reference again, the others a
# program right only on short inputs (passes base, fails plus) or one that raises.
EVALPLUS_FILE = REPO / "tests" / "data" / "evalplus_eval_results.json.gz"
# what evalplus computed from it: estimate_pass_at_k(total, correct, 1).mean(), base and plus
EVALPLUS_BASE_PASS1, EVALPLUS_PLUS_PASS1 = 0.5426829268292682, 0.4796747967479674


@pytest.fixture
def evalplus_json(tmp_path: Path) -> Path:
    path = tmp_path / "samples_eval_results.json"
    path.write_bytes(gzip.decompress(EVALPLUS_FILE.read_bytes()))
    return path


def test_table_reads_evalplus_results(evalplus_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = codeeval("table", "--format", "json", f"evalplus={evalplus_json}", capsys=capsys)
    assert status == 0
    doc = json.loads(out)
    assert [(c["benchmark"], c["metric"]) for c in doc["columns"]] == [("humanevalplus", "pass@1"),
                                                                       ("humanevalplus-base", "pass@1")]
    plus, base = doc["rows"][0]["cells"]
    assert plus["value"] == pytest.approx(EVALPLUS_PLUS_PASS1, abs=1e-12)  # plus: base and plus both "pass"
    assert base["value"] == pytest.approx(EVALPLUS_BASE_PASS1, abs=1e-12)
    assert plus["coverage"] == {"judged": 164, "problems_in_benchmark": None, "samples_per_problem": 3, "partial": False}
    status, out, _ = codeeval("table", f"evalplus={evalplus_json}", capsys=capsys)
    assert out.splitlines()[3] == "| evalplus | 48.0 | 54.3 |"
    # beside a results file of this plugin's: like with like unmarked, another n marked
    ours = {"format": 1, "humanevalplus": {"pass@1": 0.5}, "humanevalplus-base": {"pass@1": 0.6}, "config": {},
            "summary": {"humanevalplus": {"coverage": {"problems_in_benchmark": 164, "selected": 164, "judged": 164,
                                                       "judged_in_full": 164, "samples_per_problem": 3,
                                                       "complete": True, "whole_benchmark": True}}}}
    status, out, _ = codeeval("table", f"evalplus={evalplus_json}", f"ours={write(tmp_path / 'o.json', ours)}", capsys=capsys)
    assert status == 0 and "(a)" not in out
    ours["summary"]["humanevalplus"]["coverage"]["samples_per_problem"] = 1
    status, out, _ = codeeval("table", f"evalplus={evalplus_json}", f"ours={write(tmp_path / 'o.json', ours)}", capsys=capsys)
    assert "| ours | 50.0 (a) | 60.0 (b) |" in out.splitlines()


def test_diff_of_evalplus_results(evalplus_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(evalplus_json.read_text())
    for i in range(0, 30, 3):  # every sample of ten problems now fails the plus tests
        for sample in doc["eval"][f"HumanEval/{i}"]:
            sample["plus_status"] = "fail"
    worse = write(tmp_path / "worse_eval_results.json", doc)
    status, out, _ = codeeval("diff", "--fail-on-regression", f"a={evalplus_json}", f"b={worse}", capsys=capsys)
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == (f"note: evaluation settings not compared: {evalplus_json}, {worse} (evalplus eval_results.json) "
                        "records none")
    assert lines[1:3] == ["", "humanevalplus: 164 problems in both (a -> b)"]
    assert "changed 10: 10 worse" in out
    assert [line.split()[:4] for line in lines if line.startswith("  HumanEval/0 ")] == [["HumanEval/0", "2/3", "0/3", "-0.67"]]


def test_evalplus_results_that_cannot_be_read(evalplus_json: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(evalplus_json.read_text())
    base_only = json.loads(json.dumps(doc))
    for samples in base_only["eval"].values():
        for s in samples:
            s["plus_status"] = None  # evalplus.evaluate --base-only
    status, out, _ = codeeval("table", f"b={write(tmp_path / 'base_only.json', base_only)}", capsys=capsys)
    assert status == 0 and out.splitlines()[:4] == ["| dataset | humanevalplus-base |", "|---|---|", "| metric | pass@1 |",
                                                    "| b | 54.3 |"]
    foreign = {"date": "x", "hash": "y", "eval": {"Foo/1": doc["eval"]["HumanEval/0"]}}
    status, _, err = codeeval("table", write(tmp_path / "foreign.json", foreign), capsys=capsys)
    assert status == 2 and err.endswith("not a usable evalplus results file: Foo/1: not a HumanEval/N or Mbpp/N task id\n")
    old = {"date": "x", "hash": "y", "eval": {"HumanEval/0": {"nfiles": 1, "base": [["pass", []]], "plus": [["pass", []]]}}}
    status, _, err = codeeval("table", write(tmp_path / "old.json", old), capsys=capsys)
    assert status == 2 and "older than 0.3" in err
    # the counts themselves: exactly what evalplus counts
    run = cli.load_run(str(evalplus_json))
    assert run.problems["humanevalplus"]["HumanEval/1"] == (3, 1)  # the third sample passes base only
    assert run.problems["humanevalplus-base"]["HumanEval/1"] == (3, 2)
    assert run.scores["humanevalplus"][1] == metrics.mean_pass_at_k(run.problems["humanevalplus"].values(), 1)
