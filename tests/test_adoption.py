"""Outside the clone: benchmarks from the installed package, and a plugin that stays out of the
way of suites that do not ask for it."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import benchmarks
from pytest_codeeval.plugin import suite_paths
from tests.conftest import REPO, write_jsonl

PLAIN = "def test_one():\n    assert 1 + 1 == 2\n"


# -- --codeeval-benchmark -------------------------------------------------------------------------
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_benchmark_option_runs_the_installed_modules_in_an_empty_directory(
        pytester: pytest.Pytester, humaneval_records: list[dict[str, Any]], xdist: list[str]) -> None:
    """No benchmarks/ folder here: the named benchmark's items come from the package, with the
    ids a clone's `pytest benchmarks/humaneval` gives them, and -k picks among them."""
    assert not (pytester.path / "benchmarks").exists()
    pytester.makepyfile(test_plain=PLAIN)  # the user's own tests: not what was asked for
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": r["task_id"], "completion": r["canonical_solution"]}
                                            for r in humaneval_records[:3]])
    result = pytester.runpytest("--codeeval-benchmark=humaneval", "--codeeval-generations=s.jsonl", "-p",
                                "no:cacheprovider", "-rA", "-k", "HumanEval_0 or HumanEval_1 or HumanEval_2", *xdist)
    # -k matches substrings: HumanEval_1 also picks 10-19 and 100-163 (84 in all without samples)
    result.assert_outcomes(passed=3, skipped=84)
    passed = sorted(line.split()[-1] for line in result.stdout.lines if line.startswith("PASSED"))
    assert passed == [f"test_humaneval.py::test_humaneval[HumanEval_{i}]" for i in range(3)]
    assert "test_plain" not in result.stdout.str()


def test_benchmark_option_adds_to_paths_given(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest("test_plain.py", "--codeeval-benchmark=humaneval", "--codeeval-model=reference",
                                "-p", "no:cacheprovider", "-k", "test_one or HumanEval_7")
    result.assert_outcomes(passed=1 + 11)  # test_one; HumanEval/7 and /70-79


def test_benchmark_ini_twin_holds_the_whole_evaluation(pytester: pytest.Pytester) -> None:
    """A user's pyproject.toml can name the benchmarks (a list or a comma list) and the source."""
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ncodeeval_benchmark = ["humaneval", "mbpp_sanitized"]\n'
                               'codeeval_model = "reference"\ncodeeval_json = "out/r.json"\n')
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "HumanEval_3 or Mbpp_2", "-q")
    assert result.ret == 0
    doc = json.loads((pytester.path / "out" / "r.json").read_text())
    assert set(doc["problems"]) == {"humaneval", "mbpp_sanitized"}
    assert "HumanEval/3" in doc["problems"]["humaneval"] and "Mbpp/2" in doc["problems"]["mbpp_sanitized"]


def test_benchmark_option_rejects_unknown_names_in_one_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--codeeval-benchmark=humaneval,humanevl", "--codeeval-model=reference")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --codeeval-benchmark: unknown benchmark 'humanevl'; known: *humaneval*"])


def test_every_benchmark_the_package_knows_has_an_installed_module() -> None:
    for name, path in zip(benchmarks.names(), suite_paths(tuple(benchmarks.names()))):
        modules = list(path.glob("test_*.py"))
        assert len(modules) == 1, (name, path)
        assert f'@pytest.mark.codeeval("{name}")' in modules[0].read_text(), name


def test_the_wheel_lists_every_package_and_benchmark_folder() -> None:
    """The package list is spelled out (the benchmarks/ folder ships as pytest_codeeval.suites):
    a new subpackage or an importably named benchmark folder must be added to it."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "pytest_codeeval").rglob("__init__.py")}
    found |= {f"pytest_codeeval.suites.{d.name}" for d in (REPO / "benchmarks").iterdir()
              if d.is_dir() and d.name.isidentifier()}
    assert found | {"pytest_codeeval.suites"} == listed
    assert config["package-dir"] == {"pytest_codeeval.suites": "benchmarks"}


# -- inert until asked --------------------------------------------------------------------------
PROBE = """
import os

def pytest_sessionfinish(session):
    plugin = session.config.pluginmanager.get_plugin("codeeval-session")
    with open("probe.txt", "w") as f:
        f.write(f"registered={plugin is not None}\\n")
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_unrelated_suite_sees_nothing_of_the_plugin(pytester: pytest.Pytester, xdist: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed but not asked for: no header line, no summary section, no sandbox, no state."""
    pytester.makepyfile(test_plain=PLAIN)
    pytester.makeconftest(PROBE)
    tmp = pytester.mkdir("tmp")  # where a sandbox would make its directory (this run's alone)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    environ = dict(os.environ)
    result = pytester.runpytest("-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=1)
    # (pytester's in-process runs warn that the already imported plugin cannot be rewritten)
    assert not [line for line in result.stdout.lines if line.startswith("codeeval") or " codeeval " in line]
    assert (pytester.path / "probe.txt").read_text() == "registered=False\n"
    assert list(tmp.iterdir()) == []
    environ.pop("PYTEST_CURRENT_TEST", None)  # pytest's own, for the item running this test
    assert {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} == environ


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_codeeval_test_in_a_suite_that_named_none_wakes_the_plugin(
        pytester: pytest.Pytester, humaneval_records: list[dict[str, Any]], xdist: list[str]) -> None:
    """A user's own test marked @pytest.mark.codeeval, run by plain `pytest` with no option: the
    plugin wakes at collection, judges, and reports (under xdist the controller wakes at the
    first report). The conftest supplies the programs, so no model is needed."""
    solutions = {r["task_id"]: r["prompt"] + r["canonical_solution"] for r in humaneval_records[:40]}
    pytester.makeconftest(f"""
import pytest

SOLUTIONS = {solutions!r}

@pytest.fixture
def codeeval_completions(codeeval_problem):
    return (SOLUTIONS[codeeval_problem.task_id],)
""")
    pytester.makepyfile(test_mine="""
import pytest

@pytest.mark.codeeval("humaneval")
def test_humaneval(codeeval_problem, codeeval_completions, codeeval_sandbox):
    codeeval_sandbox.check(codeeval_problem, codeeval_completions)
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "HumanEval_0 or HumanEval_3", *xdist)
    result.assert_outcomes(passed=1 + 11)  # HumanEval/0; /3 and /30-39
    result.stdout.re_match_lines([r"humaneval\s+12\s+12\s+12\s+1\s+1\.0000"])


# -- one object per role -------------------------------------------------------------------------
ROLES_PROBE = """
import json, os

NAMES = ("codeeval-session", "codeeval-judging", "codeeval-reporting", "codeeval-services", "codeeval-progress")

def pytest_sessionfinish(session):
    pm = session.config.pluginmanager
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    registered = {name: type(pm.get_plugin(name)).__name__ for name in NAMES if pm.get_plugin(name) is not None}
    with open(f"roles-{worker}.json", "w") as f:
        json.dump(registered, f)
"""


@pytest.mark.parametrize("how", ["serial", "xdist", "collect-only under -n"])
def test_each_process_registers_its_roles_objects_only(pytester: pytest.Pytester, how: str) -> None:
    """As junitxml and xdist's DSession: a serial run judges and reports; an xdist worker judges
    and reports nothing (the controller gets its reports); the controller judges nothing, hosts
    the generation services and reports. --collect-only under -n collects here (xdist steps
    aside): a serial process."""
    pytester.makeconftest(ROLES_PROBE)
    args = {"serial": [], "xdist": ["-n", "2"], "collect-only under -n": ["-n", "2", "--collect-only"]}[how]
    result = pytester.runpytest("--codeeval-benchmark=humaneval", "--codeeval-model=reference",
                                "-k", "HumanEval_163", "-p", "no:cacheprovider", *args)
    assert result.ret == 0
    roles = {p.stem.removeprefix("roles-"): json.loads(p.read_text()) for p in pytester.path.glob("roles-*.json")}
    serial = {"codeeval-session": "Context", "codeeval-judging": "Judging", "codeeval-reporting": "Reporting",
              "codeeval-progress": "ProgressPlugin"}
    if how == "xdist":
        assert roles == {
            "main": {"codeeval-session": "Context", "codeeval-reporting": "ControllerReporting",
                     "codeeval-services": "Services", "codeeval-progress": "ProgressPlugin"},
            **{w: {"codeeval-session": "Context", "codeeval-judging": "WorkerJudging",
                   "codeeval-progress": "ProgressPlugin"} for w in ("gw0", "gw1")},
        }, roles
        result.assert_outcomes(passed=1)
    else:
        assert roles == {"main": serial}, roles
