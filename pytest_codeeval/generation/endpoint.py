"""Completions from a model behind an OpenAI-compatible HTTP endpoint (vLLM, TGI, llama.cpp's
server, Ollama, ``transformers serve``): ``--codeeval-model=http://host:port/v1``.

:class:`EndpointSource` is the planner (:mod:`~pytest_codeeval.generation.planner`: the
look-ahead window, the generation cache, ``--codeeval-regenerate``, greedy's one sample per
problem, prompts and seeds, as for a local model) over a :class:`ServedModel` (the server's
model list, the prompt mode, the cache identity) and an :class:`HttpBackend`: one request per
sample (several servers ignore ``n``) through the ``openai`` client (timeouts, retries with
exponential backoff, Retry-After), kept ``--codeeval-api-concurrency`` in flight across items by
a :class:`~pytest_codeeval.generation.request_queue.RequestQueue` (the waiting item's requests
first); every finished sample goes to the cache at once.

* base mode: ``POST /completions`` with the exact text the local path continues (prefix +
  prompt), the benchmark's stop sequences (the first four: OpenAI's limit), and the text cut
  again here at the first of *all* stop sequences, since some servers ignore ``stop`` or keep
  the stop in the text (``transformers serve``).
* chat mode: ``POST /chat/completions`` with one user message, the instruction the local chat
  path puts in its template; the server applies the model's chat template. The reply is cut at
  the end of its first closed code block.
* Each sample sends its own ``seed``, derived as the local path derives it, so servers that
  honour seeds reproduce it; the sampling settings are mapped from
  :class:`~pytest_codeeval.generation.decoding.Sampling`'s fields (``Sampling.params("openai")``:
  those OpenAI lacks go in the request's extra body).

Knows nothing of pytest.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_codeeval.generation import SourceError, prompting
from pytest_codeeval.generation.backends import Done, Job, Tick
from pytest_codeeval.generation.cache import Entry
from pytest_codeeval.generation.decoding import closed_code_block, first_stop
from pytest_codeeval.generation.lm import ModelSource
from pytest_codeeval.generation.planner import GenerationOptions, Planner, Prepared, Progress
from pytest_codeeval.generation.request_queue import RequestQueue
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
    concurrency: int = 32
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


class ServedModel:
    """A :class:`~pytest_codeeval.generation.planner.Model`: the model a server serves, as far as
    prompts and the cache are concerned (no tokenizer here: the server applies its template)."""

    tokenizer = None

    def __init__(self, endpoint: EndpointOptions, chat: str, progress: EndpointProgress) -> None:
        self.endpoint = endpoint
        self.chat = chat
        self.url = base_url(endpoint.url)
        self.served: str | None = endpoint.model
        self.listed: list[str] | None = None
        self.mode: prompting.ModeChoice | None = None
        self.progress = progress
        self.lock = threading.Lock()  # the attempt counter: requests run on the queue's threads
        self._openai: Any = None

    @property
    def display_name(self) -> str:
        return self.served or self.url

    def validate(self) -> bool:
        """Ask the server which models it serves (no retries, a short timeout): an unreachable
        server, a refused key, or an ambiguous model is a one-line error before anything runs."""
        if self.mode is not None:
            return True
        client = self.api().with_options(timeout=min(self.endpoint.timeout, PROBE_SECONDS), max_retries=0)
        import openai

        try:
            self.listed = [m.id for m in client.models.list()]
        except openai.APITimeoutError:
            raise self.error(f"no answer from {self.url}/models within {min(self.endpoint.timeout, PROBE_SECONDS):g} s") from None
        except openai.APIConnectionError as e:
            raise self.error(f"cannot reach {self.url} ({_cause(e)})") from None
        except openai.APIStatusError as e:
            if e.status_code in (401, 403):
                raise self.error(f"the server refused the API key (HTTP {e.status_code}); "
                                 f"set {KEY_VARIABLES[0]} (or {KEY_VARIABLES[1]})") from None
            if self.served is None:
                raise self.error(f"GET {self.url}/models answered HTTP {e.status_code}: {self._name_one()}") from None
        except openai.APIError as e:  # an answer that is not a model list
            raise self.error(f"GET {self.url}/models: {_first_line(str(e))}") from None
        if self.served is None:
            if not self.listed:
                raise self.error(f"{self.url}/models lists no model: {self._name_one()}")
            if len(self.listed) > 1:
                raise self.error(f"the server lists {len(self.listed)} models ({', '.join(self.listed)}): "
                                 f"{self._name_one()}")
            self.served = self.listed[0]
        self.mode = prompting.choose_served_mode(self.chat, self.served)
        return True

    def prepare(self) -> None:
        self.validate()

    def text(self, problem: Problem, mode: str, prefix: str) -> str:
        """The text continued (base), or the user message the server's template wraps (chat)."""
        if mode == prompting.BASE:
            return prompting.prompt_text(problem, mode, None, prefix)
        return prompting.chat_message(problem, prefix)

    def tokenize(self, text: str, mode: str) -> None:
        return None  # no tokenizer here: characters sort the window as well

    def identity(self) -> dict[str, Any]:
        return {"backend": BACKEND, "endpoint": self.url, "model": self.served}

    def describe(self) -> dict[str, Any]:
        return {"model": self.served, "endpoint": self.url, "backend": BACKEND}

    def prompt_mode_line(self, role: str, chat: str) -> str:
        """``model NAME at URL: chat prompts (auto: the served model's name ...; ...)``"""
        if self.mode is None:
            return f"{role} at {self.url}: prompt mode chosen when the server is first asked"
        return f"{role} {self.served} at {self.url}: {self.mode.describe()}"

    def _name_one(self) -> str:
        option = self.endpoint.model_option
        return f"choose one with {option}" if option else "this endpoint must serve exactly one model"

    def error(self, what: str) -> SourceError:
        return SourceError(f"{self.endpoint.flag}={self.endpoint.url}: {what}")

    def api(self) -> Any:
        """The openai client: timeouts, retries with exponential backoff (honouring Retry-After),
        and a hook that counts every HTTP attempt, so retries can be reported."""
        if self._openai is None:
            import openai

            def count(request: Any) -> None:
                if request.method == "POST":
                    with self.lock:
                        self.progress.attempts += 1

            key = next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), NO_KEY)
            self._openai = openai.OpenAI(
                base_url=self.url, api_key=key, timeout=self.endpoint.timeout, max_retries=self.endpoint.retries,
                http_client=openai.DefaultHttpxClient(event_hooks={"request": [count]}))
        return self._openai


class HttpBackend:
    """A streaming :class:`~pytest_codeeval.generation.backends.Backend`: one request per sample
    to the server, ``concurrency`` in flight across items (no batch barrier); each answer goes to
    ``done`` on the queue thread that got it. A request that fails after the client's retries
    stops the queue: no further request starts, those in flight still end (and are kept), and
    the failure is raised as a one-line :class:`SourceError`."""

    stores = False
    streams = True

    def __init__(self, model: ServedModel, options: GenerationOptions, report: Callable[[str], None]) -> None:
        self.model = model
        self.endpoint = model.endpoint
        self.options = options
        self.report = report
        self.progress = model.progress
        # (prompt hash, sample index) jobs, kept in flight across items
        self._queue: RequestQueue[tuple[str, int]] | None = None
        self._jobs: dict[tuple[str, int], Job] = {}
        self._done: Done | None = None

    def rows(self) -> int:  # pragma: no cover - a streaming backend is handed whole windows
        return self.endpoint.concurrency

    def open(self, identity: dict[str, Any], done: Done) -> None:
        self._done = done

    def generate(self, jobs: Sequence[Job], urgent: Sequence[Job], done: Done, tick: Tick) -> None:
        """Queue every job not yet asked for (the urgent ones first), wait for the urgent ones."""
        self._done = done
        if self._queue is None:
            assert self.model.mode is not None
            self._queue = RequestQueue(self._attempt, self.endpoint.concurrency, self._deliver, "codeeval-endpoint")
            self.report(f"codeeval: generating with {self.model.served} at {self.model.url} ({self.model.mode.mode} "
                        f"mode, {self.endpoint.concurrency} request(s) at a time)")
        fresh = [j for j in jobs if j.key not in self._jobs]
        self._jobs.update((j.key, j) for j in fresh)  # asked for once: the queue has them
        self._queue.submit([j.key for j in fresh])
        self._queue.wait([j.key for j in urgent], tick=tick)

    def busy_seconds(self) -> float:
        """Seconds with at least one request in flight (the tokens/s denominator)."""
        return self._queue.busy_seconds() if self._queue is not None else 0.0

    def close(self) -> None:
        """Start no further request (the session ended); those in flight are left behind."""
        if self._queue is not None:
            self._queue.stop()

    def _attempt(self, key: tuple[str, int]) -> tuple[Entry, bool]:
        try:
            return self.complete(self._jobs[key])
        except BaseException:
            with self.model.lock:
                self.progress.failed += 1
            raise

    def _deliver(self, key: tuple[str, int], answer: tuple[Entry, bool]) -> None:
        """One answer, on the queue's thread that got it: to the cache at once (crash-safe)."""
        entry, usage = answer
        with self.model.lock:
            self.progress.usage_missing += not usage
        assert self._done is not None
        self._done(self._jobs[key], entry)

    def complete(self, job: Job) -> tuple[Entry, bool]:
        """One sample, on a queue thread: the entry to cache, and whether the server reported
        its token count."""
        import openai

        standard, extra = self.options.sampling.params("openai")
        request: dict[str, Any] = {"model": self.model.served, **standard, "seed": job.seed}
        if extra:  # e.g. top_k: vLLM and llama.cpp's server take it, transformers serve refuses it
            request["extra_body"] = extra
        client = self.model.api()
        with self.model.lock:
            self.progress.requests += 1
        try:
            if job.chat:
                answer = client.chat.completions.create(messages=[{"role": "user", "content": job.text}], **request)
                choice = answer.choices[0]
                text = choice.message.content or ""
            else:
                if job.stops:
                    request["stop"] = list(job.stops[:MAX_STOPS])
                answer = client.completions.create(prompt=job.text, **request)
                choice = answer.choices[0]
                text = choice.text or ""
        except openai.APIError as e:
            raise self.model.error(f"{job.label}: POST {self.model.url}/{'chat/completions' if job.chat else 'completions'} "
                                   f"failed (--codeeval-api-retries={self.endpoint.retries}): "
                                   f"{_describe_error(e, self.endpoint.timeout)}") from None
        except (IndexError, AttributeError) as e:  # no choices: not an OpenAI-compatible answer
            raise self.model.error(f"{job.label}: an answer without a completion ({e})") from None
        reason = choice.finish_reason or "unknown"
        cut = closed_code_block(text) if job.chat else first_stop(text, job.stops)
        if cut is not None:
            text, reason = text[:cut], "stop"
        usage = getattr(answer, "usage", None)
        tokens = getattr(usage, "completion_tokens", None)
        return Entry(text, int(tokens or 0), str(reason)), tokens is not None

    def describe(self) -> dict[str, Any]:
        return {
            "api": {
                "concurrency": self.endpoint.concurrency, "timeout": self.endpoint.timeout,
                "retries": self.endpoint.retries, "stops_sent": MAX_STOPS,
                "api_key": next((v for v in KEY_VARIABLES if os.environ.get(v)), None),
            },
            "libraries": {"openai": _version("openai")},
        }

    def counters(self) -> dict[str, Any]:
        p = self.progress
        return {
            "requests": p.requests, "retries": p.retries, "failed_requests": p.failed,
            # servers that report no usage: their samples count 0 tokens
            "tokens_reported": p.usage_missing == 0 if p.samples_generated else None,
            "responses_without_usage": p.usage_missing,
        }


class EndpointSource(ModelSource):
    """A :class:`~pytest_codeeval.generation.CompletionSource` backed by an OpenAI-compatible
    server: the planner over a :class:`ServedModel` and an :class:`HttpBackend` (a
    :class:`~pytest_codeeval.generation.lm.ModelSource` by kind only: a model generates it)."""

    name = "endpoint"
    local_model = False  # the server holds the model: nothing to load here or to share under xdist

    def __init__(self, endpoint: EndpointOptions, options: GenerationOptions, cache_root: Path,
                 report: Callable[[str], None] | None = None) -> None:
        progress = EndpointProgress()
        model = ServedModel(endpoint, options.chat, progress)
        say = report or (lambda line: None)
        Planner.__init__(self, model, HttpBackend(model, options, say), options, cache_root, say, progress)
        self.progress: EndpointProgress = progress
        self.endpoint = endpoint
        self.url = model.url
        self.name = f"endpoint {self.url}"
        self.requested = None
        self.service = None
        self.share = (0, 1)

    @property
    def served(self) -> str | None:
        return self.model.served  # type: ignore[attr-defined, no-any-return]

    @property
    def listed(self) -> list[str] | None:
        return self.model.listed  # type: ignore[attr-defined, no-any-return]

    def _complete(self, prepared: Prepared, index: int) -> tuple[Entry, bool]:
        """One sample's request, now (the tests warm the client with it)."""
        return self.backend.complete(self._job(prepared, index))  # type: ignore[attr-defined, no-any-return]


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
