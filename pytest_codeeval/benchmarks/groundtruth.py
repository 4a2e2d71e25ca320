"""Expected outputs for differential testing, computed once per dataset file and cached.

HumanEval+ and MBPP+ store test inputs but not outputs: like evalplus, the expected outputs are
what the reference solution returns. Computing them takes ~30 s for HumanEval+ on 2 cores, so
the result is cached under the cache directory (``CODEEVAL_CACHE``, else
``$XDG_CACHE_HOME/pytest-codeeval``), keyed by the dataset file's sha256, as one pickle per
problem that the sandbox's fork server loads when that problem's samples run. A lock file makes
concurrent xdist workers compute it once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_codeeval.benchmarks import BenchmarkError
from pytest_codeeval.sandbox.protocol import isolated_command

log = logging.getLogger(__name__)


def cache_root() -> Path:
    explicit = os.environ.get("CODEEVAL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "pytest-codeeval"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _safe(task_id: str) -> str:
    return task_id.replace("/", "_")


def ensure(name: str, digest: str, jobs: Sequence[dict[str, Any]], workers: int | None = None) -> dict[str, dict[str, Any]]:
    """Make sure every job's expected outputs are cached; return {task_id: {"path", "seconds"}}.

    A job: task_id, dataset ("humaneval" | "mbpp"), code (the reference program), entry_point,
    base_input, plus_input (as stored in the dataset).
    """
    folder = cache_root() / "groundtruth" / f"{name}-{digest[:16]}"
    index_file = folder / "index.json"
    with _locked(folder.parent / f"{folder.name}.lock"):
        if index_file.is_file():
            index = json.loads(index_file.read_text())
            if all(j["task_id"] in index for j in jobs):
                log.debug("ground truth for %s: %d problems cached in %s", name, len(jobs), folder)
                return index
        folder.mkdir(parents=True, exist_ok=True)
        workers = workers or len(os.sched_getaffinity(0))
        log.debug("ground truth for %s: computing %d problems' expected outputs with %d worker(s) into %s",
                  name, len(jobs), workers, folder)
        started = time.perf_counter()
        index = _compute(folder, jobs, workers)
        log.debug("ground truth for %s: computed in %.1f s", name, time.perf_counter() - started)
        tmp = index_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, index_file)
        return index


def _compute(folder: Path, jobs: Sequence[dict[str, Any]], workers: int) -> dict[str, dict[str, Any]]:
    prepared = [{**j, "path": str(folder / f"{_safe(j['task_id'])}.pkl")} for j in jobs]
    chunks = [prepared[i::workers] for i in range(workers) if prepared[i::workers]]
    procs = []
    for chunk in chunks:
        p = subprocess.Popen(
            isolated_command("pytest_codeeval.benchmarks.groundtruth_worker"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert p.stdin is not None
        p.stdin.write(json.dumps(chunk))
        p.stdin.close()
        procs.append(p)
    index: dict[str, dict[str, Any]] = {}
    errors = []
    for p in procs:
        assert p.stdout is not None and p.stderr is not None
        out, err = p.stdout.read(), p.stderr.read()
        p.wait()
        for line in out.splitlines():
            result = json.loads(line)
            if "error" in result:
                errors.append(f"{result['task_id']}: {result['error']}")
            else:
                index[result["task_id"]] = {
                    "path": str(folder / f"{_safe(result['task_id'])}.pkl"),
                    "seconds": result["seconds"],
                }
        if p.returncode != 0:
            errors.append(f"ground-truth worker exited with {p.returncode}: {err.strip()[-300:]}")
    if errors:
        raise BenchmarkError(f"{folder.name}: reference solutions failed: " + "; ".join(errors[:5]))
    return index
