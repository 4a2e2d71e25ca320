"""The local backend: the batched transformers loop (:mod:`~pytest_codeeval.generation.decoding`)
over a model loaded in this process (:mod:`~pytest_codeeval.generation.model`).

The model is loaded on the first job (a run served from the cache loads none). Under the
automatic batch size, a batch that runs out of memory is retried with half the rows, keeping
the samples that finished. Knows nothing of pytest; torch and transformers only inside
functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation.backends import Done, Job, Tick
from pytest_codeeval.generation.cache import Entry
from pytest_codeeval.generation.decoding import Finished, Request, Sampling, generate

AUTO_BATCH_CPU = 32  # rows; measured 76 tok/s at 32 against 48 at 8 on 2 cores
AUTO_BATCH_GPU = 128


def request(job: Job) -> Request:
    """The decoding loop's request for a job."""
    return Request(job.key, job.ids, job.stops, job.seed, until_code_block=job.chat)


class LocalBackend:
    """A :class:`~pytest_codeeval.generation.backends.Backend` decoding in this process."""

    stores = False
    streams = False

    def __init__(self, spec: Callable[[], models.ModelSpec], display_name: str, sampling: Sampling,
                 batch_size: int | None, report: Callable[[str], None],
                 decode: Callable[..., Any] = generate) -> None:
        self._spec = spec  # the resolved spec, known once the planner has prepared the model
        self.display_name = display_name
        self.sampling = sampling
        self.batch_size = batch_size
        self.report = report
        self.decode = decode  # the loop (tests replace it to simulate running out of memory)
        self.batch_rows = batch_size or None  # None until first asked: auto_rows() imports torch
        self.loaded: models.LoadedModel | None = None
        self.load_seconds: float | None = None

    def rows(self) -> int:
        if self.batch_rows is None:
            self.batch_rows = auto_rows()
        return self.batch_rows

    def open(self, identity: dict[str, Any], done: Done) -> None:
        return None

    def generate(self, jobs: Sequence[Job], urgent: Sequence[Job], done: Done, tick: Tick) -> None:
        loaded = self.load()
        eos = models.eos_ids(loaded)
        by_key = {j.key: j for j in jobs}
        finished: set[Any] = set()

        def ended(f: Finished) -> None:
            finished.add(f.request.key)
            done(by_key[f.request.key], Entry(f.text, f.tokens, f.reason))
            tick()

        pending = [request(j) for j in jobs]
        while pending:
            rows = self.rows()
            try:
                self.decode(loaded.model, loaded.tokenizer, pending, self.sampling, eos, ended, max_rows=rows)
            except Exception as e:  # out of memory: halve the rows, keep what finished, go on
                halved = halved_rows(e, rows, fixed=self.batch_size is not None)
                if halved is None:
                    raise
                self.batch_rows = halved
                self.report(f"codeeval: out of memory with {rows} rows; {halved} from now on")
            pending = [r for r in pending if r.key not in finished]

    def load(self) -> models.LoadedModel:
        """The model, loaded on first need."""
        if self.loaded is None:
            started = time.perf_counter()
            self.report(f"codeeval: loading {self.display_name} ...")
            try:
                self.loaded = models.load(self._spec())
            except models.ModelError as e:
                raise SourceError(str(e)) from None
            self.load_seconds = time.perf_counter() - started
            self.report(f"codeeval: loaded in {self.load_seconds:.1f} s ({self.loaded.dtype} on {self.loaded.device})")
        return self.loaded

    def describe(self) -> dict[str, Any]:
        return {"dtype": self.loaded.dtype if self.loaded else None, "batch_size": self.batch_size or "auto",
                "libraries": models.library_versions()}

    def counters(self) -> dict[str, Any]:
        return {"model_load_seconds": round(self.load_seconds, 2) if self.load_seconds is not None else None,
                "model_loads": 1 if self.loaded is not None else 0}


def auto_rows() -> int:
    """The automatic batch size's starting rows on this machine."""
    import torch

    return AUTO_BATCH_GPU if torch.cuda.is_available() else AUTO_BATCH_CPU


def halved_rows(error: BaseException, rows: int, fixed: bool) -> int | None:
    """After a batch failed with ``error``: the rows to go on with when it ran out of memory
    under the automatic batch size (memory freed first), else None (the error stands)."""
    if fixed or rows == 1 or not _is_oom(error):
        return None
    _free_memory()
    return max(1, rows // 2)


def _is_oom(e: BaseException) -> bool:
    try:
        from accelerate.utils.memory import should_reduce_batch_size

        return bool(should_reduce_batch_size(e))
    except ImportError:  # pragma: no cover - accelerate is a dependency
        return "out of memory" in str(e).lower()


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
