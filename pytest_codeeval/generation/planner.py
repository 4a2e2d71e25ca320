"""The planner: what every model-backed completion source shares, whatever generates.

The plugin tells the source which problems come next (:meth:`Planner.expect`). When an item asks
for its programs and some of its samples are neither cached nor generated, the planner hands
the backend (:mod:`pytest_codeeval.generation.backends`) jobs from that look-ahead window:

* a batching backend (the local loop, vLLM) gets the batch that holds the asking problem: the
  upcoming problems that still lack samples, sorted by prompt length (less padding), cut into
  batches of about ``QUEUE_FACTOR`` x ``backend.rows()`` samples; the other batches wait for
  their own items;
* a streaming backend (the xdist generation service, an HTTP server's request queue) gets every
  upcoming job at once, the asking problem's as urgent, and the planner waits for those only.

The planner owns the prompts (:mod:`~pytest_codeeval.generation.prompting`, through the model's
tokenizer or a server's template), stop rules, per-sample seeds, the crash-safe cache
(:mod:`~pytest_codeeval.generation.cache`: every finished sample lands there at once), code
extraction, the progress counters and the results file's record of the settings. What differs
by where the model lives (a checkpoint here, a served model) is a :class:`Model`; what differs by
how samples are produced is a backend. Knows nothing of pytest.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_codeeval.generation import SourceError, fim, prompting
from pytest_codeeval.generation.backends import Backend, Job
from pytest_codeeval.generation.cache import Entry, GenerationCache, digest
from pytest_codeeval.generation.decoding import Sampling
from pytest_codeeval.problem import Problem

# a batch holds this many times the rows in the forward pass: as rows end, waiting ones join
QUEUE_FACTOR = 2
# more than this share of the generations stopped by --codeeval-max-new-tokens is worth a warning
LENGTH_WARNING_SHARE = 0.05


@dataclass(frozen=True)
class GenerationOptions:
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = 0
    batch_size: int | None = None  # rows per forward pass; None: automatic, halved on OOM
    chat: str = "auto"  # auto | on | off
    prefix: str = ""
    regenerate: bool = False
    fim: str | None = None  # --codeeval-fim: the infilling family, where the tokenizer declares none
    backend: str = "transformers"  # --codeeval-backend, for a local model: transformers | vllm


@dataclass
class Progress:
    """Counters for the progress display and the results file."""

    samples_generated: int = 0
    tokens: int = 0
    seconds: float = 0.0
    batches: int = 0
    running_since: float | None = None  # perf_counter() at the start of the batch generating now

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def seconds_so_far(self) -> float:
        """Seconds spent generating, the batch still running included (for tokens/s mid-batch)."""
        running = self.running_since
        return self.seconds + (time.perf_counter() - running if running is not None else 0.0)


class Model(Protocol):
    """Where the model lives, as far as prompts and the cache are concerned: a checkpoint here
    (:class:`~pytest_codeeval.generation.lm.LocalModel`) or a served one
    (:class:`~pytest_codeeval.generation.endpoint.ServedModel`)."""

    mode: prompting.ModeChoice | None  # the prompt mode, once chosen
    display_name: str
    tokenizer: Any  # the model's tokenizer, read by prepare(); None for a served model

    def validate(self) -> bool:
        """Checks at session start that cost no weights; whether the prompt mode is now chosen
        (so the header can say it). A bad model: a one-line :class:`SourceError`."""
        ...

    def prepare(self) -> None:
        """Choose the prompt mode now (once); :class:`SourceError` if the model cannot be used."""
        ...

    def text(self, problem: Problem, mode: str, prefix: str) -> str:
        """What is sent for ``problem`` in ``mode``: the text continued, or a chat message."""
        ...

    def tokenize(self, text: str, mode: str) -> tuple[int, ...] | None:
        """``text`` as the local loop feeds it; None: this model has no tokenizer here."""
        ...

    def identity(self) -> dict[str, Any]:
        """What identifies the model in the cache's identity."""
        ...

    def describe(self) -> dict[str, Any]:
        """The model's part of the results file's config."""
        ...

    def prompt_mode_line(self, role: str, chat: str) -> str:
        """The header's and summary's line about the prompt mode."""
        ...


@dataclass(eq=False)
class Prepared:
    """One problem's prompt, ready to generate from."""

    problem: Problem
    text: str  # the exact text the model continues, or the chat message a server templates
    stops: tuple[str, ...]
    hash: str
    mode: str
    tokenize: Callable[[str, str], tuple[int, ...] | None] | None = field(default=None, repr=False)
    _ids: tuple[int, ...] | None = field(default=None, repr=False)

    @property
    def ids(self) -> tuple[int, ...]:
        """The prompt's tokens, computed on first need (cache lookups need only the hash)."""
        if self._ids is None:
            self._ids = (self.tokenize(self.text, self.mode) if self.tokenize else None) or ()
        return self._ids

    @property
    def length(self) -> int:
        """What a window is sorted by (similar lengths share a batch: less padding); characters
        where there is no tokenizer."""
        return len(self.ids) if self.ids else len(self.text)


class Planner:
    """A :class:`~pytest_codeeval.generation.CompletionSource` backed by a model and a backend."""

    name = "model"
    local_model = True  # weights loaded in this process (or, under xdist, a generation service)

    def __init__(self, model: Model, backend: Backend, options: GenerationOptions, cache_root: Path,
                 report: Callable[[str], None] | None = None, progress: Progress | None = None) -> None:
        self.model = model
        self.backend = backend
        self.options = options
        self.cache_root = cache_root
        self.report = report or (lambda line: None)
        self.progress = progress or Progress()
        self.on_progress: Callable[[], None] | None = None  # told after every sample generated here
        self.mode_at_start = False  # chosen by validate(), so the header said it
        self._cache: GenerationCache | None = None
        self._upcoming: list[Problem] = []
        self._prepared: dict[tuple[str, str], Prepared] = {}
        self._streamed: set[tuple[str, str]] = set()  # problems whose samples a streaming backend was given
        self._fresh: set[tuple[str, int]] = set()  # samples generated in this session
        self._fim: fim.FimFormat | None = None  # infilling's layout, chosen when first needed
        # the cache and counters: a backend may hand samples over from its own threads
        self._lock = threading.RLock()

    @property
    def mode(self) -> prompting.ModeChoice | None:
        return self.model.mode

    # -- checks that cost no weights ------------------------------------------------------------
    def validate(self) -> None:
        """A bad model (or a missing extra, an unreachable server) is reported before anything
        runs, and the prompt mode chosen where that is cheap, so the header can say it."""
        if self.model.validate():
            self.mode_at_start = True

    def _ready(self, announce: bool = True) -> None:
        """Choose the prompt mode (if :meth:`validate` did not: then say it, when ``announce``),
        open the cache, and let the backend connect."""
        if self._cache is not None:
            return
        lazily = self.model.mode is None
        self.model.prepare()
        if lazily and announce:  # e.g. the embedded default: the header could not say it
            self.report(f"codeeval: {self.prompt_mode_line()}")
        identity = self.identity()
        self._cache = GenerationCache(self.cache_root / "generations", identity)
        self.backend.open(identity, self._done)

    def _ready_if_possible(self, announce: bool = True) -> bool:
        """:meth:`_ready`, where a failure is reported later, by the item that needs the model
        (an xdist controller, which generates nothing itself, only describes the source)."""
        if self._cache is None:
            try:
                self._ready(announce)
            except SourceError:
                return False
        return True

    def prompt_mode_line(self, role: str = "model") -> str:
        """``model NAME: chat prompts (auto: ...; --codeeval-chat=off for base prompts)``, for the
        header and the summary; before the mode is known, when it will be."""
        return self.model.prompt_mode_line(role, self.options.chat)

    def settle_mode(self) -> bool:
        """Choose the prompt mode now if it can be (at the session's end, for the summary, on an
        xdist controller whose workers chose it); whether it is known."""
        self._ready_if_possible(announce=False)
        return self.model.mode is not None

    def identity(self) -> dict[str, Any]:
        """Everything that decides a sample's text besides its prompt and index."""
        assert self.model.mode is not None
        s = self.options.sampling
        return {**self.model.identity(), **self.backend_identity(), "mode": self.model.mode.mode,
                "prefix": self.options.prefix, **asdict(s), "seed": None if s.greedy else self.options.seed}

    def backend_identity(self) -> dict[str, Any]:
        """What the backend adds to the identity: samples another backend draws differ."""
        extra = getattr(self.backend, "identity", None)
        return dict(extra()) if callable(extra) else {}

    # -- CompletionSource -------------------------------------------------------------------
    def expect(self, problems: Sequence[Problem]) -> None:
        """The problems whose items come next, in run order (the look-ahead window)."""
        self._upcoming = list(problems)

    def available(self, problem: Problem) -> tuple[str, ...] | None:
        """Programs already generated (or cached), without generating anything."""
        if not self._ready_if_possible():
            return None
        try:
            return self._programs_if_complete(self._prepare(problem))
        except SourceError:  # no infilling layout: the item that asks says so
            return None

    def programs(self, problem: Problem) -> tuple[str, ...]:
        self._ready()
        prepared = self._prepare(problem)
        done = self._programs_if_complete(prepared)
        if done is not None:
            return done
        if self.backend.streams:
            self._stream_for(prepared)
        else:
            self._batch_for(prepared)
        done = self._programs_if_complete(prepared)
        if done is None:  # pragma: no cover - generation finishes every row it is given
            raise SourceError(f"{problem.task_id}: generation ended without every sample")
        return done

    def missing_reason(self, problem: Problem) -> str:  # pragma: no cover - never missing
        return ""

    def describe(self) -> dict[str, Any]:
        self._ready_if_possible(announce=False)
        p = self.progress
        return {
            **self.model.describe(),
            **self.generation_settings(),
            **self.backend.describe(),
            "generation": {
                "samples_generated": p.samples_generated,
                "tokens": p.tokens, "seconds": round(p.seconds, 2),
                "tokens_per_second": round(p.tokens_per_second, 2), "batches": p.batches,
                **self.backend.counters(),
            },
        }

    def generation_settings(self) -> dict[str, Any]:
        """The results file's record of how samples were drawn and prompted (any backend)."""
        s = self.options.sampling
        mode = self.model.mode
        return {
            "n_samples": self.options.n,
            **asdict(s), "do_sample": not s.greedy,
            "seed": self.options.seed,
            "prompt_mode": mode.mode if mode else None,
            "prompt_mode_reason": mode.why if mode else None,
            "prefix": self.options.prefix,
            "generation_cache": str(self._cache.path) if self._cache else None,
        }

    def sample_info(self, problem: Problem) -> dict[str, Any]:
        """Per problem, for the results file: tokens and why each sample ended (``length``
        means it hit --codeeval-max-new-tokens), and how many came from the cache."""
        assert self._cache is not None
        prepared = self._prepare(problem)
        entries = [self._cache.get(prepared.hash, i) for i in self._indices()]
        fresh = sum(1 for i in self._indices() if (prepared.hash, i) in self._fresh)
        return {
            "tokens": [e.tokens for e in entries if e],
            "finish": [e.reason for e in entries if e],
            "from_cache": len(entries) - fresh,
        }

    def plan(self, problems: Sequence[Problem]) -> tuple[int, int] | None:
        """For the progress display: the distinct samples ``problems`` need (problems sharing a
        prompt share them; greedy: one per problem) and how many of them are ready now (cached;
        under --codeeval-regenerate none). None when the source cannot be used (the item that
        needs it will say why)."""
        if not self._ready_if_possible():
            return None
        assert self._cache is not None
        with self._lock:
            self._cache.refresh()
        try:
            needed = {w.hash: w for w in map(self._prepare, problems)}
        except SourceError:  # no infilling layout: the first item that needs one says so
            return None
        total = len(needed) * len(self._indices())
        return total, total - sum(len(self._missing(w)) for w in needed.values())

    def stops_for(self, problem: Problem) -> tuple[str, ...]:
        mode = self._mode_for(problem)
        if mode == prompting.FIM:
            try:
                return prompting.stops(problem, mode, self._fim_format(problem))
            except SourceError:
                return ()
        return prompting.stops(problem, mode)

    def _mode_for(self, problem: Problem) -> str:
        """Chat prompting is for Python problems; other languages' prompts (MultiPL-E) are
        always continued as bigcode-evaluation-harness does, since a reply's code cannot be
        spliced into their test programs reliably. Infilling problems always get the model's
        fill-in-the-middle prompt: a chat template has no place for the code after the hole."""
        if problem.infilling:
            return prompting.FIM
        mode = self.model.mode
        if mode is None or problem.language != "python":
            return prompting.BASE
        return mode.mode

    def _fim_format(self, problem: Problem) -> fim.FimFormat:
        """The fill-in-the-middle layout: ``--codeeval-fim``'s family, else the one whose tokens
        the tokenizer declares; neither is a one-line error naming the option."""
        if self._fim is None:
            tokenizer = self.model.tokenizer
            self._fim = fim.FAMILIES[self.options.fim] if self.options.fim is not None else fim.detect(tokenizer)
            if self._fim is None:
                whose = ("its tokenizer declares no fill-in-the-middle tokens" if tokenizer is not None
                         else "a served model's tokenizer cannot be read here")
                raise SourceError(f"{problem.benchmark} needs fill-in-the-middle prompts, and for "
                                  f"{self.model.display_name} {whose}: name its family with "
                                  f"--codeeval-fim={'|'.join(fim.FAMILIES)}")
        return self._fim

    # -- prompts, the cache ---------------------------------------------------------------------
    def _prepare(self, problem: Problem) -> Prepared:
        key = (problem.benchmark, problem.task_id)
        found = self._prepared.get(key)
        if found is None:
            mode = self._mode_for(problem)
            tokenize: Callable[[str, str], tuple[int, ...] | None] = self.model.tokenize
            if mode == prompting.FIM:
                layout = self._fim_format(problem)
                prefix, suffix = self.options.prefix + problem.program_prefix, problem.suffix or ""
                text = layout.prompt(prefix, suffix)
                if self.model.tokenizer is not None:  # tokenized when generated, markers as single tokens
                    tokenize = functools.partial(_fim_ids, self.model.tokenizer, layout, prefix, suffix)
                stops = prompting.stops(problem, mode, layout)
            else:
                text = self.model.text(problem, mode, self.options.prefix)
                stops = prompting.stops(problem, mode)
            found = Prepared(problem, text, stops, digest([text, list(stops), mode])[:32], mode, tokenize)
            self._prepared[key] = found
        return found

    def _indices(self) -> range:
        # greedy decoding is deterministic: one sample stands for all n
        return range(1 if self.options.sampling.greedy else self.options.n)

    def _programs_if_complete(self, prepared: Prepared) -> tuple[str, ...] | None:
        assert self._cache is not None
        if self._missing(prepared):
            return None
        entries = [self._cache.get(prepared.hash, i) for i in self._indices()]
        programs = tuple(prompting.to_program(prepared.problem, prepared.mode, e.text) for e in entries if e)
        return programs * self.options.n if self.options.sampling.greedy else programs

    def _missing(self, prepared: Prepared) -> list[int]:
        """Sample indices still to generate (under --codeeval-regenerate: not yet this session)."""
        assert self._cache is not None
        if self.options.regenerate:
            return [i for i in self._indices() if (prepared.hash, i) not in self._fresh]
        return [i for i in self._indices() if self._cache.get(prepared.hash, i) is None]

    def _seed(self, prepared: Prepared, index: int) -> int:
        return int(digest([self.options.seed, prepared.hash, index])[:15], 16)

    def _job(self, prepared: Prepared, index: int) -> Job:
        return Job((prepared.hash, index), prepared.text, prepared.ids, prepared.stops, self._seed(prepared, index),
                   chat=prepared.mode == prompting.CHAT, label=prepared.problem.task_id)

    def _jobs(self, prepared: Prepared) -> list[Job]:
        return [self._job(prepared, i) for i in self._missing(prepared)]

    # -- the window -----------------------------------------------------------------------------
    def _batch_for(self, target: Prepared) -> None:
        assert self._cache is not None
        with self._lock:
            self._cache.refresh()  # another worker may have finished some meanwhile
        window = [self._prepare(p) for p in self._upcoming if p is not target.problem]
        window = [target] + [w for w in window if w.hash != target.hash and self._missing(w)]
        # sorted by prompt length, cut into batches of about QUEUE_FACTOR x `rows` samples (rows
        # at once in the forward pass, the rest joining as rows end): the one holding target
        rows = self.backend.rows() * QUEUE_FACTOR
        window.sort(key=lambda w: w.length)
        batches: list[list[Prepared]] = [[]]
        used = 0
        for w in window:
            need = len(self._missing(w))
            if batches[-1] and used + need > rows:
                batches.append([])
                used = 0
            batches[-1].append(w)
            used += need
        batch = next(b for b in batches if target in b)
        jobs = [j for w in batch for j in self._jobs(w)]
        self._run(jobs, jobs)

    def _stream_for(self, target: Prepared) -> None:
        """Hand the backend every upcoming sample (it generates them while this process judges),
        the target's as urgent; wait for those."""
        assert self._cache is not None
        with self._lock:
            self._cache.refresh()
        urgent = self._jobs(target)
        # every upcoming problem is handed over once: the backend keeps what it was given, and
        # preparing the whole window again at each wait was quadratic in the items (ReCode: 29,220)
        fresh = [p for p in self._upcoming if (p.benchmark, p.task_id) not in self._streamed]
        self._streamed.update((p.benchmark, p.task_id) for p in fresh)
        window = [w for w in map(self._prepare, fresh) if w.hash != target.hash]
        self._run(urgent + [j for w in window for j in self._jobs(w)], urgent)

    def _done(self, job: Job, entry: Entry) -> None:
        """A finished sample: to the cache at once (crash-safe), and counted."""
        cache = self._cache
        assert cache is not None
        with self._lock:
            if self.backend.stores:  # the generation service wrote it and counts it
                cache.note(job.key[0], job.key[1], entry)
                self._fresh.add(job.key)
                return
            cache.put(job.key[0], job.key[1], entry)
            self._fresh.add(job.key)
            self.progress.samples_generated += 1
            self.progress.tokens += entry.tokens
            busy = getattr(self.backend, "busy_seconds", None)
            if busy is not None:  # requests in flight while this process judged count too
                self.progress.seconds = busy()

    def _tick(self) -> None:
        if self.on_progress is not None:
            self.on_progress()

    def _run(self, jobs: list[Job], urgent: list[Job]) -> None:
        stores = self.backend.stores
        busy = getattr(self.backend, "busy_seconds", None)
        started = time.perf_counter()
        if not stores and busy is None:
            self.progress.running_since = started
        try:
            self.backend.generate(jobs, urgent, self._done, self._tick)
        finally:  # the display's tokens/s counts a running batch's time until here
            self.progress.running_since = None
            if busy is not None:
                self.progress.seconds = busy()
            else:
                self.progress.seconds += time.perf_counter() - started
            if not stores:
                self.progress.batches += 1  # (streaming: the items that waited for their samples)

    def close(self) -> None:
        """The session ended: the backend starts nothing more (requests in flight are left)."""
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()


def _fim_ids(tokenizer: Any, layout: fim.FimFormat, prefix: str, suffix: str, _text: str, _mode: str) -> tuple[int, ...]:
    """An infilling prompt's tokens (:attr:`Prepared.tokenize`'s signature)."""
    return fim.encode(tokenizer, layout, prefix, suffix)[1]


def length_warning(records: Iterable[Mapping[str, Any]], max_new_tokens: int) -> str | None:
    """A line for the summary when more than :data:`LENGTH_WARNING_SHARE` of the generations in
    the per-problem ``records`` (their ``generation.finish``) stopped at the token limit: their
    programs are cut off, and the score says more about the limit than about the model."""
    finishes = [f for r in records for f in ((r.get("generation") or {}).get("finish") or ())]
    cut = sum(1 for f in finishes if f == "length")
    if not finishes or cut <= LENGTH_WARNING_SHARE * len(finishes):
        return None
    return (f"warning: {cut} of {len(finishes)} generations ({cut / len(finishes):.0%}) stopped at "
            f"--codeeval-max-new-tokens={max_new_tokens}, cut off before they ended: raise the limit")
