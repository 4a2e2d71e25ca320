"""Completions from a local language model: look-ahead batches, the cache, progress.

The plugin tells the source which problems come next (:meth:`ModelSource.expect`). When an item
asks for its programs and some of its samples are neither cached nor generated, the source takes
the upcoming problems that still lack samples, sorts them by prompt length (less padding), cuts
them into batches of about ``batch_size`` rows, and generates only the batch that holds the
asking problem; the others wait for their own items. Every finished sample goes to the cache at
once. The model is loaded on the first batch: a run served from the cache loads only the
tokenizer. Knows nothing of pytest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from pathlib import Path
from typing import Any

from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation import prompting
from pytest_codeeval.generation.cache import Entry, GenerationCache, digest
from pytest_codeeval.generation.decoding import Finished, Request, Sampling, generate
from pytest_codeeval.generation.service import ServiceClient, ServiceError, setup_message
from pytest_codeeval.problem import Problem

AUTO_BATCH_CPU = 32  # rows; measured 76 tok/s at 32 against 48 at 8 on 2 cores
AUTO_BATCH_GPU = 128
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


@dataclass
class _Prepared:
    problem: Problem
    text: str  # the exact text the model continues
    ids: tuple[int, ...]
    stops: tuple[str, ...]
    hash: str

    @property
    def length(self) -> int:
        """What a window is sorted by (similar lengths share a batch: less padding)."""
        return len(self.ids)


class ModelSource:
    """A :class:`~pytest_codeeval.generation.CompletionSource` backed by a transformers model."""

    name = "model"
    local_model = True  # weights loaded in this process (or, under xdist, a generation service)

    def __init__(self, spec: models.ModelSpec, options: GenerationOptions, cache_root: Path,
                 report: Callable[[str], None] | None = None, service: tuple[str, str] | None = None,
                 share: tuple[int, int] = (0, 1)) -> None:
        self.requested = spec
        self.options = options
        self.name = f"model {self._display_name()}"
        self.cache_root = cache_root
        self.report = report or (lambda line: None)
        self.progress = Progress()
        self.on_progress: Callable[[], None] | None = None  # told after every sample generated here
        self.spec: models.ModelSpec | None = None  # resolved (embedded folder, adapter base)
        self.mode: prompting.ModeChoice | None = None
        self._tokenizer: Any = None
        self._loaded: models.LoadedModel | None = None
        self._cache: GenerationCache | None = None
        self._upcoming: list[Problem] = []
        self._prepared: dict[tuple[str, str], _Prepared] = {}
        self._rows = options.batch_size or None
        self._fingerprint: str | None = None
        self._fresh: set[tuple[str, int]] = set()  # samples generated in this session
        self._failure: SourceError | None = None  # why the model cannot be used (asked once)
        self.mode_at_start = False  # chosen by validate(), so the header said it
        self.load_seconds: float | None = None
        # an xdist worker's generation service (address, key): the model lives there, not here
        self.service = service
        self._client: ServiceClient | None = None
        self._sent: set[tuple[str, int]] = set()  # samples already asked of the service
        # (this worker's copy, copies): with several model copies each proactively generates its
        # share of the upcoming problems; a worker's own current problem is always asked for
        self.share = share

    # -- checks that cost no weights ------------------------------------------------------------
    def validate(self) -> None:
        """A bad model, adapter or quantization request, or a missing extra, is reported before
        anything runs, and the prompt mode is chosen (the tokenizer read), so the header can say
        it. The embedded default is validated when first used: a session without a codeeval item
        must not import torch, and its conversion takes a minute once."""
        if self.requested.model == models.EMBEDDED:
            return
        try:
            self._choose_mode()
        except models.ModelError as e:
            raise SourceError(str(e)) from None
        self.mode_at_start = True

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
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                self.spec.model, revision=self.spec.revision, trust_remote_code=self.spec.trust_remote_code)
            self.mode = prompting.choose_mode(self.options.chat, self._display_name(), self._tokenizer)
        except (models.ModelError, ValueError, OSError) as e:
            self._failure = SourceError(str(e).splitlines()[0])
            raise self._failure from None

    def _ready(self, announce: bool = True) -> None:
        """Choose the prompt mode (if :meth:`validate` did not: then say it, when ``announce``),
        open the cache, and connect to the generation service (an xdist worker's)."""
        if self._cache is not None:
            return
        lazily = self.mode is None
        self._choose_mode()
        if lazily and announce:  # the embedded default: the header could not say it
            self.report(f"codeeval: {self.prompt_mode_line()}")
        assert self.spec is not None
        self._fingerprint = models.fingerprint(self.spec)
        self._cache = GenerationCache(self.cache_root / "generations", self.identity())
        if self.service is not None:
            self._connect(*self.service)

    def prompt_mode_line(self, role: str = "model") -> str:
        """``model NAME: chat prompts (auto: ...; --codeeval-chat=off for base prompts)``, for the
        header and the summary; before the mode is known, when it will be."""
        if self.mode is None:
            return (f"{role} {self._display_name()}: prompt mode chosen when it is first used "
                    f"(--codeeval-chat={self.options.chat})")
        return f"{role} {self._display_name()}: {self.mode.describe()}"

    def settle_mode(self) -> bool:
        """Choose the prompt mode now if it can be (at the session's end, for the summary, on an
        xdist controller whose workers chose it); whether it is known."""
        self._ready_if_possible(announce=False)
        return self.mode is not None

    def _connect(self, address: str, key: str) -> None:
        """Hand generation to the session's service; what it finishes lands in this cache."""
        cache = self._cache
        assert cache is not None and self.spec is not None

        def done(key: tuple[str, int], text: str, tokens: int, reason: str) -> None:
            cache.note(key[0], key[1], Entry(text, tokens, reason))
            self._fresh.add(key)

        try:
            self._client = ServiceClient(address, bytes.fromhex(key), done)
            self._client.hello(setup_message(self.spec, self.identity(), self.options.sampling, self.options.batch_size,
                                             self.cache_root, self.options.regenerate))
        except (OSError, EOFError, AuthenticationError) as e:
            raise SourceError(f"cannot reach the generation service at {address}: {e}") from None

    def _display_name(self) -> str:
        return self.requested.model if self.requested.model != models.EMBEDDED else models.EMBEDDED_NAME

    def identity(self) -> dict[str, Any]:
        """Everything that decides a sample's text besides its prompt and index."""
        assert self.spec is not None and self.mode is not None
        s = self.options.sampling
        return {
            "model": self.spec.model, "revision": self.spec.revision, "peft": self.spec.peft,
            "weights": self._fingerprint, "precision": self.spec.precision,
            "quantization": self.spec.quantization, "mode": self.mode.mode, "prefix": self.options.prefix,
            "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k,
            "max_new_tokens": s.max_new_tokens, "seed": None if s.greedy else self.options.seed,
        }

    # -- CompletionSource -------------------------------------------------------------------
    def expect(self, problems: Sequence[Problem]) -> None:
        """The problems whose items come next, in run order (the look-ahead window)."""
        self._upcoming = list(problems)

    def available(self, problem: Problem) -> tuple[str, ...] | None:
        """Programs already generated (or cached), without generating anything."""
        if not self._ready_if_possible():
            return None
        return self._programs_if_complete(self._prepare(problem))

    def _ready_if_possible(self, announce: bool = True) -> bool:
        """:meth:`_ready`, where a failure is reported later, by the item that needs the model
        (an xdist controller, which generates nothing itself, only describes the source)."""
        if self._cache is None:
            try:
                self._ready(announce)
            except SourceError:
                return False
        return True

    def programs(self, problem: Problem) -> tuple[str, ...]:
        self._ready()
        prepared = self._prepare(problem)
        done = self._programs_if_complete(prepared)
        if done is not None:
            return done
        if self._client is not None:
            self._generate_remotely(prepared)
        else:
            self._generate_batch_for(prepared)
        done = self._programs_if_complete(prepared)
        if done is None:  # pragma: no cover - generation finishes every row it is given
            raise SourceError(f"{problem.task_id}: generation ended without every sample")
        return done

    def missing_reason(self, problem: Problem) -> str:  # pragma: no cover - never missing
        return ""

    def describe(self) -> dict[str, Any]:
        self._ready_if_possible(announce=False)
        spec = self.spec or self.requested
        p = self.progress
        return {
            "model": self._display_name(),
            "model_path": spec.model,
            "revision": spec.revision,
            "peft": spec.peft,
            "weights_fingerprint": self._fingerprint,
            "precision": spec.precision,
            "dtype": self._loaded.dtype if self._loaded else None,
            "quantization": spec.quantization,
            "trust_remote_code": spec.trust_remote_code,
            **self._generation_settings(),
            "batch_size": self.options.batch_size or "auto",
            "generation": {
                "samples_generated": p.samples_generated,
                "tokens": p.tokens, "seconds": round(p.seconds, 2),
                "tokens_per_second": round(p.tokens_per_second, 2), "batches": p.batches,
                "model_load_seconds": round(self.load_seconds, 2) if self.load_seconds is not None else None,
                "model_loads": 1 if self._loaded is not None else 0,
            },
            "libraries": models.library_versions(),
        }

    def _generation_settings(self) -> dict[str, Any]:
        """The results file's record of how samples were drawn and prompted (any backend)."""
        s = self.options.sampling
        return {
            "n_samples": self.options.n,
            "temperature": s.temperature, "do_sample": not s.greedy, "top_p": s.top_p, "top_k": s.top_k,
            "max_new_tokens": s.max_new_tokens,
            "seed": self.options.seed,
            "prompt_mode": self.mode.mode if self.mode else None,
            "prompt_mode_reason": self.mode.why if self.mode else None,
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
        self._cache.refresh()
        needed = {w.hash: w for w in map(self._prepare, problems)}
        total = len(needed) * len(self._indices())
        return total, total - sum(len(self._missing(w)) for w in needed.values())

    def stops_for(self, problem: Problem) -> tuple[str, ...]:
        return prompting.stops(problem, self._mode_for(problem))

    def _mode_for(self, problem: Problem) -> str:
        """Chat prompting is for Python problems; other languages' prompts (MultiPL-E) are
        always continued as bigcode-evaluation-harness does, since a reply's code cannot be
        spliced into their test programs reliably."""
        if self.mode is None or problem.language != "python":
            return prompting.BASE
        return self.mode.mode

    # -- internals ----------------------------------------------------------------------------
    def _prepare(self, problem: Problem) -> _Prepared:
        key = (problem.benchmark, problem.task_id)
        found = self._prepared.get(key)
        if found is None:
            mode = self._mode_for(problem)
            text = prompting.prompt_text(problem, mode, self._tokenizer, self.options.prefix)
            stops = prompting.stops(problem, mode)
            ids = tuple(self._tokenizer(text, add_special_tokens=mode == prompting.BASE)["input_ids"])
            found = _Prepared(problem, text, ids, stops, digest([text, list(stops), mode])[:32])
            self._prepared[key] = found
        return found

    def _indices(self) -> range:
        # greedy decoding is deterministic: one sample stands for all n
        return range(1 if self.options.sampling.greedy else self.options.n)

    def _programs_if_complete(self, prepared: _Prepared) -> tuple[str, ...] | None:
        assert self._cache is not None and self.mode is not None
        if self._missing(prepared):
            return None
        entries = [self._cache.get(prepared.hash, i) for i in self._indices()]
        mode = self._mode_for(prepared.problem)
        programs = tuple(prompting.to_program(prepared.problem, mode, e.text) for e in entries if e)
        return programs * self.options.n if self.options.sampling.greedy else programs

    def _missing(self, prepared: _Prepared) -> list[int]:
        """Sample indices still to generate (under --codeeval-regenerate: not yet this session)."""
        assert self._cache is not None
        if self.options.regenerate:
            return [i for i in self._indices() if (prepared.hash, i) not in self._fresh]
        return [i for i in self._indices() if self._cache.get(prepared.hash, i) is None]

    def _seed(self, prepared: _Prepared, index: int) -> int:
        return int(digest([self.options.seed, prepared.hash, index])[:15], 16)

    def _batch_rows(self) -> int:
        if self._rows is None:
            self._rows = auto_rows()
        return self._rows

    def _generate_batch_for(self, target: _Prepared) -> None:
        assert self._cache is not None
        self._cache.refresh()  # another worker may have finished some meanwhile
        window = [self._prepare(p) for p in self._upcoming if p is not target.problem]
        window = [target] + [w for w in window if w.hash != target.hash and self._missing(w)]
        # sorted by prompt length, cut into batches of about QUEUE_FACTOR x `rows` samples (rows
        # at once in the forward pass, the rest joining as rows end): the one holding target
        rows = self._batch_rows() * QUEUE_FACTOR
        window.sort(key=lambda w: w.length)
        batches: list[list[_Prepared]] = [[]]
        used = 0
        for w in window:
            need = len(self._missing(w))
            if batches[-1] and used + need > rows:
                batches.append([])
                used = 0
            batches[-1].append(w)
            used += need
        batch = next(b for b in batches if target in b)
        self._run(batch)

    def _requests(self, w: _Prepared) -> list[Request]:
        return [Request((w.hash, i), w.ids, w.stops, self._seed(w, i),
                        until_code_block=self._mode_for(w.problem) == prompting.CHAT) for i in self._missing(w)]

    def _generate_remotely(self, target: _Prepared) -> None:
        """Ask the service for every upcoming sample not yet asked for (it decodes them with
        the other workers' while this worker judges), the target's as urgent; wait for those."""
        assert self._client is not None
        started = time.perf_counter()
        urgent = [(target.hash, i) for i in self._missing(target)]
        mine, copies = self.share
        window = [target] + [w for w in (self._prepare(p) for p in self._upcoming if p is not target.problem)
                             if int(w.hash[:8], 16) % copies == mine]
        requests = [r for w in window for r in self._requests(w) if r.key not in self._sent]
        self._sent.update(r.key for r in requests)
        self._client.want(requests, urgent)
        try:
            self._client.wait(urgent)
        except ServiceError as e:
            raise SourceError(str(e)) from None
        self.progress.seconds += time.perf_counter() - started

    def _run(self, batch: list[_Prepared]) -> None:
        assert self._cache is not None
        loaded = self._load()
        eos = models.eos_ids(loaded)
        requests = [r for w in batch for r in self._requests(w)]
        cache = self._cache

        def finished(f: Finished) -> None:
            prompt_hash, index = f.request.key
            entry = Entry(f.text, f.tokens, f.reason)
            cache.put(prompt_hash, index, entry)
            self._fresh.add((prompt_hash, index))
            self.progress.samples_generated += 1
            self.progress.tokens += f.tokens
            if self.on_progress is not None:
                self.on_progress()

        started = self.progress.running_since = time.perf_counter()
        pending = requests
        try:
            while pending:
                rows = self._batch_rows()
                try:
                    generate(loaded.model, loaded.tokenizer, pending, self.options.sampling, eos, finished, max_rows=rows)
                except Exception as e:  # out of memory: halve the rows, keep what finished, go on
                    halved = halved_rows(e, rows, fixed=self.options.batch_size is not None)
                    if halved is None:
                        raise
                    self._rows = halved
                    self.report(f"codeeval: out of memory with {rows} rows; {self._rows} from now on")
                pending = [r for r in pending if r.key not in self._fresh]
        finally:  # the display's tokens/s counts a running batch's time until here
            self.progress.running_since = None
            self.progress.seconds += time.perf_counter() - started
            self.progress.batches += 1

    def _load(self) -> models.LoadedModel:
        if self._loaded is None:
            assert self.spec is not None
            started = time.perf_counter()
            self.report(f"codeeval: loading {self._display_name()} ...")
            try:
                self._loaded = models.load(self.spec)
            except models.ModelError as e:
                raise SourceError(str(e)) from None
            self.load_seconds = time.perf_counter() - started
            self.report(f"codeeval: loaded in {self.load_seconds:.1f} s ({self._loaded.dtype} on {self._loaded.device})")
        return self._loaded

    @property
    def model_loaded(self) -> bool:
        return self._loaded is not None


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
