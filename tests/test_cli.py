"""The ``codeeval`` console script: table, plot, diff."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import cli, stats
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
    assert "matplotlib" in " ".join(project["optional-dependencies"]["test"])
    done = subprocess.run([sys.executable, "-m", "pytest_codeeval.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "{table,plot,diff}" in done.stdout
