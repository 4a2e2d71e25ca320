"""The vLLM backend: ``--codeeval-backend=vllm`` decodes a local model with vLLM in this process.

The planner's batch (its window, sorted by prompt length) goes to one ``LLM.generate`` call as
token-id prompts (the exact ids the transformers loop would feed: same tokenizer, same special
tokens), one request per sample with its own ``SamplingParams``: ``n=1`` and the sample's seed
(seed, prompt hash, index: a sample's text does not depend on which others shared its batch, so
``-k`` and resumed runs reproduce), the problem's stop sequences, and the sampling settings
mapped from :class:`~pytest_codeeval.generation.decoding.Sampling`'s fields
(``Sampling.params("vllm")``). Samples of one prompt share its key/value blocks through vLLM's
prefix caching (``enable_prefix_caching=True``). vLLM draws other random numbers than the
transformers loop, so its samples are cached under their own identity (``"backend": "vllm"``).

The engine is created on the first batch (a run served from the cache starts none); ``vllm`` is
the optional ``[vllm]`` extra, imported only then. Not supported: peft adapters and bitsandbytes
quantization (a one-line error), and an xdist generation service (each process that generates
holds its own engine). Knows nothing of pytest.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation.backends import Done, Job, Tick
from pytest_codeeval.generation.cache import Entry
from pytest_codeeval.generation.decoding import closed_code_block, first_stop
from pytest_codeeval.generation.planner import GenerationOptions

NAME = "vllm"
DEFAULT_ROWS = 256  # sequences vLLM schedules at once is its own business: this only sizes a batch
PRECISIONS = {"auto": "auto", "fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
INSTALL = 'pip install "pytest-codeeval[vllm]"'


class VllmBackend:
    """A :class:`~pytest_codeeval.generation.backends.Backend` decoding with ``vllm.LLM``."""

    stores = False
    streams = False

    def __init__(self, spec: Callable[[], models.ModelSpec], display_name: str, options: GenerationOptions,
                 report: Callable[[str], None]) -> None:
        self._spec = spec
        self.display_name = display_name
        self.options = options
        self.report = report
        self.llm: Any = None
        self.load_seconds: float | None = None

    def rows(self) -> int:
        return self.options.batch_size or DEFAULT_ROWS

    def identity(self) -> dict[str, Any]:
        return {"backend": NAME}

    def open(self, identity: dict[str, Any], done: Done) -> None:
        return None

    def load(self) -> Any:
        """The engine, created on first need."""
        if self.llm is not None:
            return self.llm
        spec = self._spec()
        if spec.peft or spec.quantization:
            raise SourceError(f"--codeeval-backend={NAME}: {'a peft adapter' if spec.peft else 'bitsandbytes quantization'} "
                              f"is not supported; use --codeeval-backend=transformers (or merge the adapter)")
        try:
            import vllm
        except ImportError:
            raise SourceError(f"--codeeval-backend={NAME} needs the vllm package: {INSTALL}") from None

        started = time.perf_counter()
        self.report(f"codeeval: loading {self.display_name} with vLLM ...")
        try:
            self.llm = vllm.LLM(model=spec.model, revision=spec.revision, trust_remote_code=spec.trust_remote_code,
                                dtype=PRECISIONS.get(spec.precision, "auto"), seed=self.options.seed,
                                enable_prefix_caching=True)
        except Exception as e:  # noqa: BLE001 - vLLM raises many kinds; the run stops with one line
            raise SourceError(f"vLLM could not load {self.display_name}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
        self.load_seconds = time.perf_counter() - started
        self.report(f"codeeval: loaded in {self.load_seconds:.1f} s (vLLM)")
        return self.llm

    def sampling_params(self, job: Job) -> Any:
        """The job's own ``SamplingParams``: one sample, its seed, its stops, the settings."""
        from vllm import SamplingParams

        s = self.options.sampling
        standard, extra = s.params(NAME)
        return SamplingParams(n=1, seed=None if s.greedy else job.seed, stop=list(job.stops) or None,
                              **standard, **extra)

    def generate(self, jobs: Sequence[Job], urgent: Sequence[Job], done: Done, tick: Tick) -> None:
        if not jobs:
            return
        llm = self.load()
        prompts = [{"prompt_token_ids": list(j.ids)} for j in jobs]
        outputs = llm.generate(prompts, [self.sampling_params(j) for j in jobs], use_tqdm=False)
        if len(outputs) != len(jobs):  # pragma: no cover - vLLM answers every prompt, in order
            raise SourceError(f"vLLM answered {len(outputs)} of {len(jobs)} prompts")
        for job, output in zip(jobs, outputs):
            done(job, entry(job, output.outputs[0]))
            tick()

    def describe(self) -> dict[str, Any]:
        return {"dtype": PRECISIONS.get(self._spec().precision, "auto") if self.llm is not None else None,
                "batch_size": self.options.batch_size or "auto",
                "libraries": {**models.library_versions(), "vllm": _version("vllm")}}

    def counters(self) -> dict[str, Any]:
        return {"model_load_seconds": round(self.load_seconds, 2) if self.load_seconds is not None else None,
                "model_loads": 1 if self.llm is not None else 0}


def entry(job: Job, completion: Any) -> Entry:
    """A finished sample from vLLM's ``CompletionOutput``: the text (cut again at the first stop,
    or a chat reply after its first closed code block), its tokens, and why it ended in the
    local loop's words: ``length``, ``stop`` (a stop sequence) or ``eos``."""
    text = completion.text or ""
    if completion.finish_reason == "length":
        reason = "length"
    elif isinstance(completion.stop_reason, str):
        reason = "stop"
    else:  # None (the EOS token) or the id of another stop token
        reason = "eos"
    cut = closed_code_block(text) if job.chat else first_stop(text, job.stops)
    if cut is not None:
        text, reason = text[:cut], "stop"
    return Entry(text, len(completion.token_ids or ()), reason)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
