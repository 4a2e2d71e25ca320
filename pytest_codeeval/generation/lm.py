"""Completions from a local language model: the checkpoint (:class:`LocalModel`) and
:class:`ModelSource`, the planner over the backend that decodes it.

:class:`LocalModel` is what the planner needs of a checkpoint on this machine: it is resolved
and checked (no weights read), its tokenizer read, the prompt mode chosen, prompts tokenized, and
it is identified in the generation cache by its weights' fingerprint. :class:`ModelSource` puts
it behind the backend asked for: the local transformers loop
(:class:`~pytest_codeeval.generation.backends.local.LocalBackend`), under xdist the generation
service's transport (:class:`~pytest_codeeval.generation.service.ServiceBackend`), or vLLM
(:class:`~pytest_codeeval.generation.backends.vllm.VllmBackend`, ``--codeeval-backend=vllm``).
The window, cache, prompts and progress are the planner's
(:mod:`~pytest_codeeval.generation.planner`). Knows nothing of pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation import prompting
from pytest_codeeval.generation.backends import Backend
from pytest_codeeval.generation.backends.local import AUTO_BATCH_CPU, AUTO_BATCH_GPU, LocalBackend, auto_rows, halved_rows
from pytest_codeeval.generation.decoding import generate
from pytest_codeeval.generation.planner import (
    LENGTH_WARNING_SHARE,
    QUEUE_FACTOR,
    GenerationOptions,
    Planner,
    Prepared,
    Progress,
    length_warning,
)
from pytest_codeeval.generation.service import ServiceBackend
from pytest_codeeval.problem import Problem

__all__ = ["AUTO_BATCH_CPU", "AUTO_BATCH_GPU", "LENGTH_WARNING_SHARE", "QUEUE_FACTOR", "GenerationOptions",
           "LocalModel", "ModelSource", "Progress", "auto_rows", "halved_rows", "length_warning"]

_Prepared = Prepared  # the name endpoint code and older callers used


class LocalModel:
    """A :class:`~pytest_codeeval.generation.planner.Model`: a checkpoint on this machine (or
    the embedded default), as far as prompts and the cache are concerned."""

    def __init__(self, spec: models.ModelSpec, chat: str, cache_root: Path) -> None:
        self.requested = spec
        self.chat = chat
        self.cache_root = cache_root
        self.display_name = spec.model if spec.model != models.EMBEDDED else models.EMBEDDED_NAME
        self.spec: models.ModelSpec | None = None  # resolved (embedded folder, adapter base)
        self.mode: prompting.ModeChoice | None = None
        self.tokenizer: Any = None
        self.fingerprint: str | None = None
        self._failure: SourceError | None = None  # why the model cannot be used (asked once)

    def validate(self) -> bool:
        """A bad model, adapter or quantization request, or a missing extra, is reported before
        anything runs, and the prompt mode is chosen (the tokenizer read), so the header can say
        it. The embedded default is validated when first used: a session without a codeeval item
        must not import torch, and its conversion takes a minute once."""
        if self.requested.model == models.EMBEDDED:
            return False
        try:
            self._choose_mode()
        except models.ModelError as e:
            raise SourceError(str(e)) from None
        return True

    def prepare(self) -> None:
        """Choose the prompt mode (once) and fingerprint the weights."""
        self._choose_mode()
        if self.fingerprint is None:
            assert self.spec is not None
            self.fingerprint = models.fingerprint(self.spec)

    def _choose_mode(self) -> None:
        """Resolve and check the model, read the tokenizer, choose the prompt mode (once)."""
        if self.mode is not None:
            return
        if self._failure is not None:  # a missing package or model is not looked for again
            raise self._failure
        try:
            if self.requested.model == models.EMBEDDED:
                models.require_local(models.EMBEDDED_SUBJECT)
            if self.spec is None:
                self.spec = models.resolve(self.requested, self.cache_root)
                models.check(self.spec)
            # read without transformers: a run served from the cache imports neither it nor torch
            self.tokenizer = models.light_tokenizer(self.spec)
            self.mode = prompting.choose_mode(self.chat, self.display_name, self.tokenizer)
        except (models.ModelError, ValueError, OSError) as e:
            self._failure = SourceError(str(e).splitlines()[0])
            raise self._failure from None

    def text(self, problem: Problem, mode: str, prefix: str) -> str:
        return prompting.prompt_text(problem, mode, self.tokenizer, prefix)

    def tokenize(self, text: str, mode: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text, add_special_tokens=mode == prompting.BASE)["input_ids"])

    def identity(self) -> dict[str, Any]:
        assert self.spec is not None
        return {"model": self.spec.model, "revision": self.spec.revision, "peft": self.spec.peft,
                "weights": self.fingerprint, "precision": self.spec.precision, "quantization": self.spec.quantization,
                **self.tokenizer.identity()}  # the tokenizer files' digest and the key's version

    def describe(self) -> dict[str, Any]:
        spec = self.spec or self.requested
        return {
            "model": self.display_name, "model_path": spec.model, "revision": spec.revision, "peft": spec.peft,
            "weights_fingerprint": self.fingerprint, "precision": spec.precision,
            "quantization": spec.quantization, "trust_remote_code": spec.trust_remote_code,
        }

    def prompt_mode_line(self, role: str, chat: str) -> str:
        """``model NAME: chat prompts (auto: ...; --codeeval-chat=off for base prompts)``, for the
        header and the summary; before the mode is known, when it will be."""
        if self.mode is None:
            return f"{role} {self.display_name}: prompt mode chosen when it is first used (--codeeval-chat={chat})"
        return f"{role} {self.display_name}: {self.mode.describe()}"

    def resolved(self) -> models.ModelSpec:
        """The resolved spec (the planner prepares the model before any backend needs it)."""
        assert self.spec is not None
        return self.spec


def _decode(*args: Any, **kwargs: Any) -> Any:
    # looked up here at call time: tests replace lm.generate to simulate running out of memory
    return generate(*args, **kwargs)


class ModelSource(Planner):
    """A :class:`~pytest_codeeval.generation.CompletionSource` backed by a local model: the
    planner over a :class:`LocalModel` and the backend that decodes it."""

    def __init__(self, spec: models.ModelSpec, options: GenerationOptions, cache_root: Path,
                 report: Callable[[str], None] | None = None, service: tuple[str, str] | None = None,
                 share: tuple[int, int] = (0, 1)) -> None:
        model = LocalModel(spec, options.chat, cache_root)
        say = report or (lambda line: None)
        backend: Backend
        if options.backend == "vllm":
            from pytest_codeeval.generation.backends.vllm import VllmBackend

            backend = VllmBackend(model.resolved, model.display_name, options, say)
        elif service is not None:  # an xdist worker: the model lives in the generation service
            backend = ServiceBackend(service, share, model.resolved, options, cache_root)
        else:
            backend = LocalBackend(model.resolved, model.display_name, options.sampling, options.batch_size, say,
                                   decode=_decode)
        super().__init__(model, backend, options, cache_root, say)
        self.local_model = options.backend != "vllm"  # vLLM is its own engine: no generation service
        self.name = f"model {model.display_name}"
        self.requested = spec
        self.service = service
        self.share = share

    @property
    def spec(self) -> models.ModelSpec | None:
        return getattr(self.model, "spec", None)

    @property
    def load_seconds(self) -> float | None:
        return getattr(self.backend, "load_seconds", None)

    @property
    def model_loaded(self) -> bool:
        return getattr(self.backend, "loaded", None) is not None

    @property
    def _rows(self) -> int | None:
        return getattr(self.backend, "batch_rows", None)
