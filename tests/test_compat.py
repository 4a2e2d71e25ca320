"""The transformers range the local loop supports: the one CI installs, refused loudly outside it."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from pytest_codeeval.generation import compat
from tests.conftest import REPO


@pytest.mark.parametrize("version, supported", [
    ("4.56.0", False), ("5.0.0", False), ("5.23.0", False), ("5.24.0", True), ("5.24.1", True),
    ("5.99", True), ("6.0.0", False), ("6.0.0.dev0", False), ("not-a-version", False),
])
def test_versions_outside_the_tested_range_are_refused(version: str, supported: bool) -> None:
    problem = compat.transformers_problem(version)
    assert (problem is None) is supported, problem
    if not supported:
        assert "\n" not in problem and "transformers>=5.24,<6" in problem


def test_the_installed_transformers_is_the_tested_one() -> None:
    """CI installs from pyproject.toml: what it gets must be inside the range (else the floor or
    the ceiling moved without the loop being tested on it)."""
    assert compat.transformers_problem() is None, importlib.metadata.version("transformers")


def test_pyproject_admits_exactly_the_supported_range() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (req,) = [Requirement(r) for r in extras["hf"] if Requirement(r).name == "transformers"]
    assert req.specifier == compat.REQUIREMENT.removeprefix("transformers"), req
    assert Version("5.24.0") in req.specifier and Version("5.23.0") not in req.specifier


def test_a_local_model_under_an_unsupported_transformers_is_a_one_line_usage_error(
        pytester: pytest.Pytester, bench_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "LOWEST", Version("99"))  # what is installed is now too old
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=./my-checkpoint", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --codeeval-model=./my-checkpoint: transformers {importlib.metadata.version('transformers')} "
                                 "is not supported by the local decoding loop (tested: transformers>=5.24,<6); pip install *"])
