"""An option given empty (``--codeeval-model=$MODEL`` with the variable unset, ``codeeval_model =``
in an ini file) is a one-line usage error, never the option's default: an empty model silently
evaluating the embedded toy model would look like a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

ONE = "benchmarks/humaneval/test_humaneval.py::test_humaneval[HumanEval_0]"


@pytest.fixture
def env(pytester: pytest.Pytester, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def _one_line_usage_error(result: pytest.RunResult, line: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.str().strip() == line
    assert "codeeval: loading" not in result.stdout.str() and "SmolLM2" not in result.stdout.str()


@pytest.mark.parametrize("flag, metavar", [
    ("model", "MODEL"), ("baseline-model", "MODEL"), ("generations", "[BENCH=]PATH"), ("api-model", "NAME"),
    ("peft", "ADAPTER"), ("revision", "REV"), ("json", "PATH"), ("data", "DIR"), ("cache-dir", "DIR"),
    ("save-generations", "PATH"), ("baseline", "RESULTS.json"),
])
def test_an_empty_option_on_the_command_line_is_a_usage_error(pytester: pytest.Pytester, env: Path, flag: str,
                                                              metavar: str) -> None:
    result = pytester.runpytest(ONE, f"--codeeval-{flag}=")
    tail = " (that would be the embedded default model)" if flag == "model" else ""
    _one_line_usage_error(result, f"ERROR: --codeeval-{flag} is empty (an unset variable?): give {metavar}, "
                                  f"or leave the option out{tail}")


def test_blank_is_empty_too(pytester: pytest.Pytester, env: Path) -> None:
    result = pytester.runpytest(ONE, "--codeeval-model=  ")
    _one_line_usage_error(result, "ERROR: --codeeval-model is empty (an unset variable?): give MODEL, or leave the "
                                  "option out (that would be the embedded default model)")
    result = pytester.runpytest(ONE, "--codeeval-generations=s.jsonl", "--codeeval-generations=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--codeeval-generations is empty" in result.stderr.str()


@pytest.mark.parametrize("ini", [
    "[pytest]\ncodeeval_model =\n",
    "[pytest]\ncodeeval_model = \n",
])
def test_an_empty_ini_value_is_a_usage_error(pytester: pytest.Pytester, env: Path, ini: str) -> None:
    pytester.makeini(ini)
    result = pytester.runpytest(ONE)
    _one_line_usage_error(result, "ERROR: codeeval_model (ini) is empty (an unset variable?): give MODEL, or leave "
                                  "the option out (that would be the embedded default model)")


def test_empty_values_in_pyproject_and_repeatable_ini_values(pytester: pytest.Pytester, env: Path) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ncodeeval_baseline_model = ""\n')
    result = pytester.runpytest(ONE, "--codeeval-model=reference")
    _one_line_usage_error(result, "ERROR: codeeval_baseline_model (ini) is empty (an unset variable?): give MODEL, "
                                  "or leave the option out")
    (pytester.path / "pyproject.toml").unlink()
    pytester.makeini("[pytest]\ncodeeval_generations =\n")
    result = pytester.runpytest(ONE)
    _one_line_usage_error(result, "ERROR: codeeval_generations (ini) is empty (an unset variable?): give "
                                  "[BENCH=]PATH, or leave the option out")


def test_the_command_line_wins_over_an_empty_ini_value_and_an_empty_prefix_is_allowed(
        pytester: pytest.Pytester, env: Path) -> None:
    pytester.makeini("[pytest]\ncodeeval_model =\n")
    result = pytester.runpytest(ONE, "--codeeval-model=reference", "--codeeval-prefix=")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:] + result.stderr.str()
    result.assert_outcomes(passed=1)
