"""Benchmark loaders: from a data location to a tuple of :class:`Problem`.

Knows nothing of models or pytest. Each benchmark family lives in its own module and registers
here by name. Loading is not cached here: the plugin caches per session, so that one run parses
each benchmark once and a second run in the same process sees changed files.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codeeval.problem import Problem


log = logging.getLogger(__name__)


class BenchmarkError(Exception):
    """A benchmark name that is not known, or data that is malformed."""


class DataUnavailable(BenchmarkError):
    """The benchmark's data cannot be found; the message says what to get and where to put it."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    problems: tuple[Problem, ...]
    source: str  # where the data came from, for the results file
    # a digest of data the problems do not show (EvalPlus's test inputs, behind data_path)
    data_digest: str = ""
    unavailable: str | None = None  # why its samples cannot run here (a missing toolchain): items skip

    @functools.cached_property
    def by_task_id(self) -> dict[str, Problem]:
        return {p.task_id: p for p in self.problems}

    @functools.cached_property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of what judging depends on: every problem's id, prompt, program
        prefix, checks and entry point, in order, and the digest of data held
        beside them (EvalPlus's inputs). Where the file came from does not enter it, so
        the same data read from the packaged copy or a data directory match."""
        h = hashlib.sha256()
        for p in self.problems:
            fields = [p.task_id, p.prompt, p.program_prefix, p.tests, p.base_tests, p.entry_point, p.language]
            if p.suffix is not None:  # only then: other benchmarks' fingerprints stay as they were
                fields += [p.suffix, p.prelude]
            h.update(json.dumps(fields).encode())
            h.update(b"\n")
        h.update(self.data_digest.encode())
        return f"sha256:{h.hexdigest()}"


LoadOptions = Mapping[str, Any]  # benchmark-specific choices, e.g. {"mbpp_split": "full"}


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    load: Callable[[Path | None, LoadOptions], Benchmark]
    owns_task_id: Callable[[str], bool]  # a cheap test, to route a generations file's task ids
    description: str


_REGISTRY: dict[str, BenchmarkSpec] = {}


def register(spec: BenchmarkSpec) -> None:
    _REGISTRY[spec.name] = spec


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def spec(name: str) -> BenchmarkSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BenchmarkError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(names())}"
        ) from None


def load(name: str, data_dir: Path | None, options: LoadOptions | None = None) -> Benchmark:
    """Load a benchmark's problems, from ``data_dir`` when given, else its packaged source."""
    started = time.perf_counter()
    try:
        bench = spec(name).load(data_dir, options or {})
    except BenchmarkError as e:
        log.debug("benchmark %s: not loaded (data dir %s): %s", name, data_dir, e)
        raise
    log.debug("benchmark %s: %d problems from %s in %.2f s", name, len(bench.problems), bench.source,
              time.perf_counter() - started)
    return bench


def owners_of(task_id: str) -> list[str]:
    """The benchmarks whose task ids look like ``task_id`` (MBPP's variants share theirs)."""
    _load_builtin()
    return sorted(name for name, s in _REGISTRY.items() if s.owns_task_id(task_id))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a (gzipped) JSONL data file; a defect is one line naming file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    records = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise BenchmarkError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    except (OSError, EOFError) as e:
        raise BenchmarkError(f"{path}: cannot read ({e})") from None
    return records


def hub_usable() -> bool:
    """Whether a benchmark's hub fallback is worth trying: the optional ``datasets`` package (in
    the hf extra) is installed and the hub answers. Asked once per process, quickly: offline,
    ``datasets`` would spend about 23 s retrying for each benchmark before giving up."""
    import importlib.util

    if importlib.util.find_spec("datasets") is None:
        return False
    return _hub_answers()


@functools.lru_cache(maxsize=1)
def _hub_answers() -> bool:
    from pytest_codeeval.generation.model import hub_unreachable

    return hub_unreachable() is None


def hub_hint(dataset: str) -> str:
    """The end of a "data not found" message: the hub's copy of ``dataset``, read through the
    optional ``datasets`` package, whether it is installed or not."""
    import importlib.util

    if importlib.util.find_spec("datasets") is None:
        return f' (or, online, the hub\'s {dataset}: pip install datasets, or "pytest-codeeval[hf]")'
    return f" (or go online for the hub's {dataset}, read through datasets)"


def _load_builtin() -> None:
    # Imported lazily: registering must not cost an import on pytest's start-up path.
    from pytest_codeeval.benchmarks import evalplus, humaneval, infilling, mbpp, multiple, recode  # noqa: F401
