"""Backends: what turns generation jobs into finished samples.

The planner (:mod:`pytest_codeeval.generation.planner`) owns everything backends share: the
look-ahead window, prompts, stop rules, seeds, the cache, code extraction, progress and the
results file's description of the settings. A backend only generates: it is handed
:class:`Job` s (a prepared prompt, its stops, its seed) and calls ``done`` once per finished
sample, as it finishes. Sampling settings reach a backend as
:class:`~pytest_codeeval.generation.decoding.Sampling`, whose fields say how each API names them
(``Sampling.params``), so a new sampling option needs no edit here.

Backends:

* :class:`~pytest_codeeval.generation.backends.local.LocalBackend`: the batched transformers
  loop of :mod:`~pytest_codeeval.generation.decoding` in this process;
* :class:`~pytest_codeeval.generation.service.ServiceBackend`: under xdist, a transport to the
  generation service process, which runs the same loop for every worker;
* :class:`~pytest_codeeval.generation.endpoint.HttpBackend`: an OpenAI-compatible server;
* :class:`~pytest_codeeval.generation.backends.vllm.VllmBackend`: vLLM in this process.

Knows nothing of pytest; imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_codeeval.generation.cache import Entry

# the local transformers loop, its xdist service, an OpenAI-compatible server, vLLM in-process
NAMES = ("transformers", "vllm")  # --codeeval-backend's values (a URL model is always the server's)


@dataclass(frozen=True)
class Job:
    """One sample to generate."""

    key: tuple[str, int]  # (prompt hash, sample index): the cache's key
    text: str  # the exact text the model continues (base), or the user message (a server's chat)
    ids: tuple[int, ...]  # ``text`` tokenized as the local loop feeds it (empty without a tokenizer)
    stops: tuple[str, ...]  # the output is cut before the first of these
    seed: int  # this sample's own seed: (seed, prompt hash, index)
    chat: bool = False  # a chat reply: it ends once its first fenced code block is closed
    label: str = ""  # the problem's task id, for messages


Done = Callable[[Job, Entry], None]
Tick = Callable[[], None]


class Backend(Protocol):
    """Turns jobs into samples. Set by the planner, read by it:"""

    # whether finished samples are written to the cache (and counted) elsewhere, by the
    # generation service: the planner then only notes them
    stores: bool
    # whether the planner hands every upcoming job at once (the service decodes them while this
    # process judges) rather than the length-sorted batch that holds the asked problem
    streams: bool

    def rows(self) -> int:
        """Samples generated side by side; a batch holds ``planner.QUEUE_FACTOR`` times as many."""
        ...

    def open(self, identity: dict[str, Any], done: Done) -> None:
        """The cache is open for ``identity``: connect, if the backend connects to anything (no
        model is loaded here: a run served from the cache loads none). A streaming backend hands
        samples it learns of unasked (another worker's) to ``done`` too."""
        ...

    def generate(self, jobs: Sequence[Job], urgent: Sequence[Job], done: Done, tick: Tick) -> None:
        """Generate ``jobs``, calling ``done`` once for each as it finishes (on any thread, one
        at a time: it persists the sample), and ``tick`` on the calling thread after samples
        arrived (the progress display); return once every job in ``urgent`` is done (a
        non-streaming backend: once every job is). A failure is a one-line
        :class:`~pytest_codeeval.generation.SourceError`; the samples finished before it were
        handed to ``done``. A backend that measures its own busy time (requests in flight
        while the caller judges) says it with ``busy_seconds()``."""
        ...

    def describe(self) -> dict[str, Any]:
        """The results file's record of this backend (merged into the source's config)."""
        ...

    def counters(self) -> dict[str, Any]:
        """The backend's own counters for the results file's ``generation`` block."""
        ...
