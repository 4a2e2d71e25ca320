"""Completions from a model behind an OpenAI-compatible HTTP endpoint (vLLM, TGI, llama.cpp's
server, Ollama, ``transformers serve``): ``--codeeval-model=http://host:port/v1``.

:class:`EndpointSource` is a :class:`~pytest_codeeval.generation.lm.ModelSource` whose model
lives elsewhere: the look-ahead window, its batches, the generation cache,
``--codeeval-regenerate`` and greedy's one sample per problem are the local path's, unchanged.
What differs is how a batch is generated: one request per sample (several servers ignore ``n``)
through the ``openai`` client (timeouts, retries with exponential backoff, Retry-After), at most
``--codeeval-api-concurrency`` at a time from a thread pool; every finished sample goes to the
cache at once.

* base mode: ``POST /completions`` with the exact text the local path continues (prefix +
  prompt), the benchmark's stop sequences (the first four: OpenAI's limit), and the text cut
  again here at the first of *all* stop sequences, since some servers ignore ``stop`` or keep
  the stop in the text (``transformers serve``).
* chat mode: ``POST /chat/completions`` with one user message, the instruction the local chat
  path puts in its template; the server applies the model's chat template. The reply is cut at
  the end of its first closed code block.
* Each sample sends its own ``seed``, derived as the local path derives it, so servers that
  honour seeds reproduce it.

Knows nothing of pytest.
"""

from __future__ import annotations

import importlib.metadata
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation import prompting
from pytest_codeeval.generation.cache import Entry, GenerationCache, digest
from pytest_codeeval.generation.decoding import closed_code_block, first_stop
from pytest_codeeval.generation.lm import GenerationOptions, ModelSource, Progress, _Prepared
from pytest_codeeval.problem import Problem

BACKEND = "openai-endpoint"
SCHEMES = ("http://", "https://")
MAX_STOPS = 4  # OpenAI's limit on `stop`; the rest are cut here
PROBE_SECONDS = 10.0  # GET /models at session start: an unreachable server is an error at once
# the openai client will not start without a key; a server without authentication ignores it
# (vLLM's documentation uses the same placeholder)
NO_KEY = "EMPTY"
KEY_VARIABLES = ("CODEEVAL_API_KEY", "OPENAI_API_KEY")


def is_endpoint(model: str) -> bool:
    """Whether a ``--codeeval-model`` value names an endpoint rather than a checkpoint."""
    return model.lower().startswith(SCHEMES)


def base_url(url: str) -> str:
    """The API root, ending in ``/v1``: ``http://h:8000``, ``http://h:8000/v1/`` and a pasted
    ``http://h:8000/v1/chat/completions`` all give ``http://h:8000/v1``."""
    url = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    return url if url.endswith("/v1") else url + "/v1"


@dataclass(frozen=True)
class EndpointOptions:
    """Where the model is served and how requests are made (``--codeeval-api-*``)."""

    url: str  # as given
    model: str | None = None  # the served model's name; None: the only one GET /models lists
    concurrency: int = 8
    timeout: float = 600.0  # seconds per request (per attempt)
    retries: int = 5
    # the option that names the served model (a baseline endpoint has none: it must list one)
    model_option: str | None = "--codeeval-api-model"
    flag: str = "--codeeval-model"  # the option that gave the URL, for messages


@dataclass
class EndpointProgress(Progress):
    """The local path's counters, plus the requests made."""

    requests: int = 0  # completion requests started (answered, failed or abandoned), one per sample
    attempts: int = 0  # HTTP attempts: requests plus the client's retries
    failed: int = 0
    usage_missing: int = 0  # answers without usage.completion_tokens (their tokens count 0)

    @property
    def retries(self) -> int:
        return self.attempts - self.requests


@dataclass
class _Prompt(_Prepared):
    """What one problem sends: the prompt text (base) or the user message (chat)."""

    @property
    def length(self) -> int:
        return len(self.text)  # no tokenizer here: characters sort the window as well


class EndpointSource(ModelSource):
    """A :class:`~pytest_codeeval.generation.CompletionSource` backed by an OpenAI-compatible
    server."""

    name = "endpoint"
    local_model = False  # the server holds the model: nothing to load here or to share under xdist

    def __init__(self, endpoint: EndpointOptions, options: GenerationOptions, cache_root: Path,
                 report: Callable[[str], None] | None = None) -> None:
        super().__init__(models.ModelSpec(model=endpoint.url), options, cache_root, report)
        self.endpoint = endpoint
        self.url = base_url(endpoint.url)
        self.served: str | None = endpoint.model
        self.listed: list[str] | None = None
        self.name = f"endpoint {self.url}"
        self.progress: EndpointProgress = EndpointProgress()
        self._openai: Any = None
        self._lock = threading.Lock()
        self._announced = False

    # -- checks at session start ----------------------------------------------------------------
    def validate(self) -> None:
        """Ask the server which models it serves (no retries, a short timeout): an unreachable
        server, a refused key, or an ambiguous model is a one-line error before anything runs."""
        if self.mode is not None:
            return
        client = self._api().with_options(timeout=min(self.endpoint.timeout, PROBE_SECONDS), max_retries=0)
        import openai

        try:
            self.listed = [m.id for m in client.models.list()]
        except openai.APITimeoutError:
            raise self._error(f"no answer from {self.url}/models within {min(self.endpoint.timeout, PROBE_SECONDS):g} s") from None
        except openai.APIConnectionError as e:
            raise self._error(f"cannot reach {self.url} ({_cause(e)})") from None
        except openai.APIStatusError as e:
            if e.status_code in (401, 403):
                raise self._error(f"the server refused the API key (HTTP {e.status_code}); "
                                  f"set {KEY_VARIABLES[0]} (or {KEY_VARIABLES[1]})") from None
            if self.served is None:
                raise self._error(f"GET {self.url}/models answered HTTP {e.status_code}: {self._name_one()}") from None
        except openai.APIError as e:  # an answer that is not a model list
            raise self._error(f"GET {self.url}/models: {_first_line(str(e))}") from None
        if self.served is None:
            if not self.listed:
                raise self._error(f"{self.url}/models lists no model: {self._name_one()}")
            if len(self.listed) > 1:
                raise self._error(f"the server lists {len(self.listed)} models ({', '.join(self.listed)}): "
                                  f"{self._name_one()}")
            self.served = self.listed[0]
        self.mode = prompting.choose_served_mode(self.options.chat, self.served)
        self.mode_at_start = True

    def prompt_mode_line(self, role: str = "model") -> str:
        """``model NAME at URL: chat prompts (auto: the served model's name ...; ...)``"""
        if self.mode is None:
            return f"{role} at {self.url}: prompt mode chosen when the server is first asked"
        return f"{role} {self.served} at {self.url}: {self.mode.describe()}"

    def _name_one(self) -> str:
        option = self.endpoint.model_option
        return f"choose one with {option}" if option else "this endpoint must serve exactly one model"

    def _error(self, what: str) -> SourceError:
        return SourceError(f"{self.endpoint.flag}={self.endpoint.url}: {what}")

    def _api(self) -> Any:
        """The openai client: timeouts, retries with exponential backoff (honouring Retry-After),
        and a hook that counts every HTTP attempt, so retries can be reported."""
        if self._openai is None:
            import openai

            def count(request: Any) -> None:
                if request.method == "POST":
                    with self._lock:
                        self.progress.attempts += 1

            key = next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), NO_KEY)
            self._openai = openai.OpenAI(
                base_url=self.url, api_key=key, timeout=self.endpoint.timeout, max_retries=self.endpoint.retries,
                http_client=openai.DefaultHttpxClient(event_hooks={"request": [count]}))
        return self._openai

    def _ready(self, announce: bool = True) -> None:
        if self._cache is not None:
            return
        self.validate()
        self._cache = GenerationCache(self.cache_root / "generations", self.identity())

    def identity(self) -> dict[str, Any]:
        """Everything that decides a sample's text besides its prompt and index."""
        assert self.mode is not None
        s = self.options.sampling
        return {
            "backend": BACKEND, "endpoint": self.url, "model": self.served, "mode": self.mode.mode,
            "prefix": self.options.prefix, "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k,
            "max_new_tokens": s.max_new_tokens, "seed": None if s.greedy else self.options.seed,
        }

    # -- CompletionSource -------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        self._ready_if_possible(announce=False)
        p = self.progress
        return {
            "model": self.served,
            "endpoint": self.url,
            "backend": BACKEND,
            **self._generation_settings(),
            "api": {
                "concurrency": self.endpoint.concurrency, "timeout": self.endpoint.timeout,
                "retries": self.endpoint.retries, "stops_sent": MAX_STOPS,
                "api_key": next((v for v in KEY_VARIABLES if os.environ.get(v)), None),
            },
            "generation": {
                "samples_generated": p.samples_generated,
                "requests": p.requests, "retries": p.retries, "failed_requests": p.failed,
                "tokens": p.tokens,
                # servers that report no usage: their samples count 0 tokens
                "tokens_reported": p.usage_missing == 0 if p.samples_generated else None,
                "responses_without_usage": p.usage_missing,
                "seconds": round(p.seconds, 2), "tokens_per_second": round(p.tokens_per_second, 2),
                "batches": p.batches,
            },
            "libraries": {"openai": _version("openai")},
        }

    # -- internals ----------------------------------------------------------------------------
    def _prepare(self, problem: Problem) -> _Prepared:
        key = (problem.benchmark, problem.task_id)
        found = self._prepared.get(key)
        if found is None:
            mode = self._mode_for(problem)
            text = (prompting.prompt_text(problem, mode, None, self.options.prefix) if mode == prompting.BASE
                    else prompting.chat_message(problem, self.options.prefix))
            stops = prompting.stops(problem, mode)
            found = _Prompt(problem, text, (), stops, digest([text, list(stops), mode])[:32])
            self._prepared[key] = found
        return found

    def _batch_rows(self) -> int:
        # requests in flight; a batch holds lm.QUEUE_FACTOR times as many samples
        return self.endpoint.concurrency

    def _load(self) -> None:
        return None  # nothing to load: the server holds the model

    @property
    def model_loaded(self) -> bool:
        return False

    def _run(self, batch: list[_Prepared]) -> None:
        """Generate the batch's missing samples, ``concurrency`` requests at a time; each goes
        to the cache as it arrives. A request that fails after the client's retries stops the
        batch: no further request starts, those in flight are waited for (and kept), and the
        failure is raised as a one-line :class:`SourceError`."""
        assert self._cache is not None and self.mode is not None
        jobs = [(w, i) for w in batch for i in self._missing(w)]
        if not jobs:
            return
        if not self._announced:
            self._announced = True
            self.report(f"codeeval: generating with {self.served} at {self.url} ({self.mode.mode} mode, "
                        f"{self.endpoint.concurrency} request(s) at a time)")
        started = self.progress.running_since = time.perf_counter()
        failure: SourceError | None = None
        pool = _Pool(self._complete, jobs, self.endpoint.concurrency)
        try:
            for (w, i), answer in pool.answers():
                if isinstance(answer, BaseException):
                    self.progress.failed += 1
                    if not isinstance(answer, SourceError):
                        raise answer
                    failure = failure or answer
                    pool.stop()  # no new requests; the answers in flight still come and are kept
                    continue
                entry, usage = answer
                self._cache.put(w.hash, i, entry)
                self._fresh.add((w.hash, i))
                self.progress.samples_generated += 1
                self.progress.tokens += entry.tokens
                self.progress.usage_missing += not usage
                if self.on_progress is not None:
                    self.on_progress()
        finally:  # also on Ctrl-C, which leaves the requests in flight behind (daemon threads)
            pool.stop()
            self.progress.running_since = None
            self.progress.seconds += time.perf_counter() - started
            self.progress.batches += 1
        if failure is not None:
            raise failure

    def _complete(self, w: _Prepared, index: int) -> tuple[Entry, bool]:
        """One sample, in a pool thread: the entry to cache, and whether the server reported
        its token count."""
        import openai

        s = self.options.sampling
        chat = self._mode_for(w.problem) == prompting.CHAT
        request: dict[str, Any] = {
            "model": self.served, "max_tokens": s.max_new_tokens, "temperature": s.temperature,
            "top_p": s.top_p, "seed": self._seed(w, index),
        }
        if s.top_k:  # not an OpenAI parameter: vLLM and llama.cpp's server take it, transformers serve refuses it
            request["extra_body"] = {"top_k": s.top_k}
        client = self._api()
        with self._lock:
            self.progress.requests += 1
        try:
            if chat:
                answer = client.chat.completions.create(messages=[{"role": "user", "content": w.text}], **request)
                choice = answer.choices[0]
                text = choice.message.content or ""
            else:
                if w.stops:
                    request["stop"] = list(w.stops[:MAX_STOPS])
                answer = client.completions.create(prompt=w.text, **request)
                choice = answer.choices[0]
                text = choice.text or ""
        except openai.APIError as e:
            raise self._error(f"{w.problem.task_id}: POST {self.url}/{'chat/completions' if chat else 'completions'} "
                              f"failed (--codeeval-api-retries={self.endpoint.retries}): {_describe_error(e, self.endpoint.timeout)}") from None
        except (IndexError, AttributeError) as e:  # no choices: not an OpenAI-compatible answer
            raise self._error(f"{w.problem.task_id}: an answer without a completion ({e})") from None
        reason = choice.finish_reason or "unknown"
        cut = closed_code_block(text) if chat else first_stop(text, w.stops)
        if cut is not None:
            text, reason = text[:cut], "stop"
        usage = getattr(answer, "usage", None)
        tokens = getattr(usage, "completion_tokens", None)
        return Entry(text, int(tokens or 0), str(reason)), tokens is not None


class _Pool:
    """``work`` over ``jobs`` on ``size`` threads, answers in the order they end. Daemon threads,
    not a ``ThreadPoolExecutor``: the interpreter joins an executor's threads at exit, so a
    Ctrl-C would wait for every request in flight (up to --codeeval-api-timeout each)."""

    def __init__(self, work: Callable[..., Any], jobs: list[tuple[Any, ...]], size: int) -> None:
        self._todo: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        for job in jobs:
            self._todo.put(job)
        self._done: queue.SimpleQueue[tuple[tuple[Any, ...], Any]] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._work = work
        self._threads = [threading.Thread(target=self._serve, name=f"codeeval-endpoint-{k}", daemon=True)
                         for k in range(min(size, len(jobs)))]
        for t in self._threads:
            t.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                job = self._todo.get_nowait()
            except queue.Empty:
                return
            try:
                answer = self._work(*job)
            except BaseException as e:  # handed to the caller, who decides
                answer = e
            self._done.put((job, answer))

    def stop(self) -> None:
        """Start no further job; the ones running still answer."""
        self._stopped.set()

    def answers(self) -> Iterator[tuple[tuple[Any, ...], Any]]:
        """(job, result or the exception it raised), until every started job has answered."""
        while True:
            try:
                yield self._done.get(timeout=0.2)
            except queue.Empty:
                if not any(t.is_alive() for t in self._threads) and self._done.empty():
                    return


def _describe_error(e: Exception, timeout: float) -> str:
    import openai

    if isinstance(e, openai.APITimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(e, openai.APIConnectionError):
        return f"connection failed ({_cause(e)})"
    if isinstance(e, openai.APIStatusError):
        return f"HTTP {e.status_code}: {_first_line(e.message)}"
    return _first_line(str(e))


def _cause(e: BaseException) -> str:
    """The innermost cause's first line: ``[Errno 111] Connection refused``, not the wrapper's."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return _first_line(str(e)) or type(e).__name__


def _first_line(text: str, limit: int = 200) -> str:
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
