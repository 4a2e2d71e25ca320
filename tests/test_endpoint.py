"""``--codeeval-model=http://...``: generation through OpenAI-compatible servers, end to end.

Against real servers only: ``transformers serve`` on tiny random-weight checkpoints (and, in a
slow slice, the embedded SmolLM2), llama.cpp's server when llama-cpp-python is installed, and
small scripted HTTP servers (the standard library's ``http.server``) for what real servers do
rarely on demand: failing, hanging, listing several models, echoing what they were sent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# imported before any in-process pytester run: its compiled parts (pydantic_core, jiter) cannot
# be loaded twice in one process, and pytester drops the modules a run imported first
openai = pytest.importorskip("openai")

from pytest_codeeval.benchmarks import load  # noqa: E402
from pytest_codeeval.benchmarks.humaneval import STOP  # noqa: E402
from pytest_codeeval.generation.cache import digest  # noqa: E402
from pytest_codeeval.generation.endpoint import MAX_STOPS, base_url  # noqa: E402
from tests import tiny_models  # noqa: E402

THREE = ["HumanEval_0", "HumanEval_2", "HumanEval_7"]
SERVING = ("fastapi", "uvicorn", "openai")


def _select(ids: list[str]) -> list[str]:
    return [f"benchmarks/humaneval/test_humaneval.py::test_humaneval[{i}]" for i in ids]


def _doc(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    return json.loads((pytester.path / name).read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(pytester: pytest.Pytester, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh generation cache, offline, and no API key from the caller's environment."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CODEEVAL_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("CODEEVAL_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return cache


def _cache_rows(cache: Path) -> list[dict[str, Any]]:
    rows = []
    for f in sorted((cache / "generations").glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines()]
    return rows


@pytest.fixture(scope="session")
def problems() -> dict[str, Any]:
    return {p.task_id: p for p in load("humaneval", None).problems}


# -- scripted servers --------------------------------------------------------------------------
def completion(text: str, tokens: int | None = 7, finish: str = "stop") -> dict[str, Any]:
    out: dict[str, Any] = {"id": "c", "object": "text_completion", "created": 0, "model": "fake",
                           "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}
    if tokens is not None:
        out["usage"] = {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}
    return out


def chat_completion(content: str, tokens: int = 9, finish: str = "stop") -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}}


Reply = Callable[[str, dict[str, Any]], "tuple[int, dict[str, str], Any] | float"]


class FakeServer:
    """A real HTTP server speaking just enough of the OpenAI API: ``reply(path, body)`` gives
    (status, headers, JSON) or a number of seconds to hang. Records every request."""

    def __init__(self, reply: Reply, models: tuple[str, ...] = ("fake-model",)) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {}, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in models]})
                else:
                    self._send(404, {}, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append({"time": time.monotonic(), "path": self.path, "body": body,
                                           "authorization": self.headers.get("Authorization")})
                answer = reply(self.path, body)
                if isinstance(answer, (int, float)):
                    time.sleep(answer)  # hang: the client has given up by then
                    answer = (200, {}, completion("late"))
                try:
                    self._send(*answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def posts(self, path: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].endswith(path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", autouse=True)
def _client_modules_loaded(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Load every module the openai client imports lazily (on its first request, its first
    refused connection) before any in-process pytester run: a run drops the modules it imported
    first, and a second copy of httpcore's exception classes would no longer be the ones the
    client catches."""
    from pytest_codeeval.generation import SourceError
    from pytest_codeeval.generation.endpoint import EndpointOptions, EndpointSource
    from pytest_codeeval.generation.lm import GenerationOptions

    problem = load("humaneval", None).problems[0]
    server = FakeServer(lambda path, body: (200, {}, chat_completion("x") if "chat" in path else completion("x")))
    try:
        for chat in ("off", "on"):
            source = EndpointSource(EndpointOptions(server.url), GenerationOptions(chat=chat),
                                    tmp_path_factory.mktemp("warm"))
            source.validate()
            source._complete(source._prepare(problem), 0)
    finally:
        server.close()
    with pytest.raises(SourceError, match="cannot reach"):
        EndpointSource(EndpointOptions(f"http://127.0.0.1:{_free_port()}"), GenerationOptions(),
                       tmp_path_factory.mktemp("warm")).validate()


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeServer]]:
    started: list[FakeServer] = []

    def start(reply: Reply, models: tuple[str, ...] = ("fake-model",)) -> FakeServer:
        started.append(FakeServer(reply, models))
        return started[-1]

    yield start
    for s in started:
        s.close()


def solver(problems: dict[str, Any], broken: bool = False) -> Reply:
    """Answers like a model that knows the reference solutions. Base mode: the solution, then
    a line that starts with a stop sequence the client does not send (the fifth, ``\\nprint``)
    and would fail the program if it were not cut. Chat mode: a fenced solution, then a second
    block defining a wrong function, which the cut at the first closed block drops."""

    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        if path.endswith("/chat/completions"):
            content = body["messages"][0]["content"]
            p = next(p for p in problems.values() if p.prompt.strip() in content)
            good = p.prompt + "\n" + p.reference[len(p.program_prefix):] if not broken else f"def {p.entry_point}(*a):\n    return None\n"
            return 200, {}, chat_completion(f"Here it is:\n```python\n{good}\n```\nAnd a worse one:\n```python\n"
                                            f"def {p.entry_point}(*a):\n    return None\n```\n")
        p = next(p for p in problems.values() if body["prompt"].endswith(p.prompt))
        text = "\n    return None\n" if broken else "\n" + p.reference[len(p.program_prefix):]
        return 200, {}, completion(text + "\nprint(undefined_name)\n", finish="length")

    return reply


# -- scripted servers: what is sent, what comes back ------------------------------------------
def test_base_requests_cut_stops_seed_each_sample_and_solve(pytester: pytest.Pytester, env: Path, fake: Any,
                                                           problems: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake(solver(problems))
    monkeypatch.setenv("CODEEVAL_API_KEY", "sesame")
    args = [*_select(THREE), f"--codeeval-model={server.url}/", "--codeeval-n=3", "--codeeval-temperature=0.8",
            "--codeeval-seed=4", "--codeeval-top-k=5", "--codeeval-max-new-tokens=64", "--codeeval-json=r.json"]
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    posts = server.posts("/v1/completions")
    assert len(posts) == 9  # one request per sample: n is never sent (several servers ignore it)
    for r in posts:
        body = r["body"]
        assert "n" not in body and body["model"] == "fake-model" and body["max_tokens"] == 64
        assert body["temperature"] == 0.8 and body["top_p"] == 1.0 and body["top_k"] == 5
        assert body["stop"] == list(STOP[:MAX_STOPS]) and r["authorization"] == "Bearer sesame"
    # each sample's seed is the local path's: (seed, prompt hash, index)
    for task in ("HumanEval/0", "HumanEval/2", "HumanEval/7"):
        sent = sorted(r["body"]["seed"] for r in posts if r["body"]["prompt"] == problems[task].prompt)
        prompt_hash = digest([problems[task].prompt, list(STOP), "base"])[:32]
        assert sent == sorted(int(digest([4, prompt_hash, i])[:15], 16) for i in range(3))
    doc = _doc(pytester)
    for record in doc["problems"]["humaneval"].values():
        assert record["n"] == record["c"] == 3  # the trailing print(undefined_name) was cut off
        assert record["generation"] == {"tokens": [7, 7, 7], "finish": ["stop"] * 3, "from_cache": 0}
    config = doc["config"]
    assert config["endpoint"] == server.url and config["model"] == "fake-model" and config["backend"] == "openai-endpoint"
    assert config["generation"]["requests"] == 9 and config["generation"]["retries"] == 0
    assert config["api"]["api_key"] == "CODEEVAL_API_KEY" and "sesame" not in json.dumps(doc)
    assert doc["partial"]["humaneval"]["pass@1"] == 1.0
    rows = _cache_rows(env)
    assert len(rows) == 9 and all("undefined_name" not in r["text"] for r in rows)


def test_chat_mode_one_user_message_cut_at_the_first_closed_block(pytester: pytest.Pytester, env: Path, fake: Any,
                                                                 problems: dict[str, Any]) -> None:
    server = fake(solver(problems), models=("acme/coder-7b-instruct",))
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", "--codeeval-n=2",
                                "--codeeval-prefix=Be brief.", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    posts = server.posts("/v1/chat/completions")
    assert len(posts) == 3 and not server.posts("/v1/completions")  # greedy: one request a problem
    for r in posts:
        [message] = r["body"]["messages"]
        assert message["role"] == "user" and "stop" not in r["body"]
        p = next(p for p in problems.values() if p.prompt.strip() in message["content"])
        assert message["content"] == "Be brief." + p.instruction  # the local chat path's instruction
    config = _doc(pytester)["config"]
    assert config["prompt_mode"] == "chat" and "instruction-tuned" in config["prompt_mode_reason"]
    assert config["stop_sequences"] == {"humaneval": []}
    assert all(p["c"] == 2 for p in _doc(pytester)["problems"]["humaneval"].values())
    assert all(r["text"].endswith("```") and "return None" not in r["text"] for r in _cache_rows(env))
    # forced off: the same server, base prompts
    pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={server.url}", "--codeeval-chat=off", "--codeeval-json=r.json")
    assert _doc(pytester)["config"]["prompt_mode"] == "base" and len(server.posts("/v1/completions")) == 1


def test_missing_usage_and_failed_solutions_are_reported(pytester: pytest.Pytester, env: Path, fake: Any,
                                                        problems: dict[str, Any]) -> None:
    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        return 200, {}, completion("\n    return None\n", tokens=None, finish="length")

    server = fake(reply)
    result = pytester.runpytest(*_select(THREE[:2]), f"--codeeval-model={server.url}", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = _doc(pytester)
    assert doc["config"]["generation"]["tokens_reported"] is False
    assert doc["config"]["generation"]["responses_without_usage"] == 2 and doc["config"]["generation"]["tokens"] == 0
    assert all(p["c"] == 0 and p["generation"]["finish"] == ["length"] for p in doc["problems"]["humaneval"].values())


def test_the_header_says_a_served_models_prompt_mode_and_why(pytester: pytest.Pytester, env: Path, fake: Any,
                                                              problems: dict[str, Any]) -> None:
    base = fake(solver(problems), models=("acme/coder-7b",))
    tuned = fake(solver(problems), models=("acme/coder-7b-instruct",))
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={base.url}",
                                f"--codeeval-baseline-model={tuned.url}", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([
        f"codeeval: model acme/coder-7b at {base.url}: base prompts (auto: the served model's name does not say "
        "instruct/chat; --codeeval-chat=on if it is instruction-tuned)",
        f"codeeval: baseline model acme/coder-7b-instruct at {tuned.url}: chat prompts (auto: the served model's "
        "name says it is instruction-tuned; --codeeval-chat=off for base prompts)",
    ])
    assert _doc(pytester)["config"]["prompt_mode_reason"] == "auto: the served model's name does not say instruct/chat"
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={base.url}", "--codeeval-chat=on")
    result.stdout.fnmatch_lines([f"codeeval: model acme/coder-7b at {base.url}: chat prompts (--codeeval-chat=on)"])


def test_answers_cut_by_max_tokens_are_warned_about(pytester: pytest.Pytester, env: Path, fake: Any,
                                                   problems: dict[str, Any]) -> None:
    """More than 5% of the generations ending at --codeeval-max-new-tokens is a warning line in
    the summary; 5% or less (or every sample cut at a stop) is not."""
    cut_off = {"HumanEval/2"}

    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        p = next(p for p in problems.values() if body["prompt"].endswith(p.prompt))
        finish = "length" if p.task_id in cut_off else "stop"  # the server's finish_reason
        return 200, {}, completion("\n    return None", finish=finish)

    server = fake(reply)
    args = [*_select(THREE), f"--codeeval-model={server.url}", "--codeeval-max-new-tokens=40", "--codeeval-json=r.json"]
    result = pytester.runpytest(*args)
    assert [f for p in _doc(pytester)["problems"]["humaneval"].values() for f in p["generation"]["finish"]].count("length") == 1
    result.stdout.fnmatch_lines(["warning: 1 of 3 generations (33%) stopped at --codeeval-max-new-tokens=40, "
                                 "cut off before they ended: raise the limit"])
    cut_off.clear()
    result = pytester.runpytest(*args, "--codeeval-regenerate")
    assert "stopped at --codeeval-max-new-tokens" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*3 failed*"])


def test_503_twice_then_an_answer_is_retried_honouring_retry_after(pytester: pytest.Pytester, env: Path, fake: Any,
                                                                   problems: dict[str, Any]) -> None:
    good = solver(problems)
    calls = []

    def reply(path: str, body: dict[str, Any]) -> Any:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            return 503, {"Retry-After": "1"}, {"error": {"message": "busy"}}
        return good(path, body)

    server = fake(reply)
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={server.url}", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    assert len(server.posts()) == 3
    # Retry-After: 1 was honoured (the client's own first backoff is at most 0.5 s)
    assert calls[1] - calls[0] >= 0.9 and calls[2] - calls[1] >= 0.9
    gen = _doc(pytester)["config"]["generation"]
    assert gen["requests"] == 1 and gen["retries"] == 2 and gen["samples_generated"] == 1


def test_a_server_that_fails_ends_the_session_cleanly_keeping_what_finished(pytester: pytest.Pytester, env: Path, fake: Any,
                                                                          problems: dict[str, Any]) -> None:
    good = solver(problems)
    answered = []

    def reply(path: str, body: dict[str, Any]) -> Any:
        if len(answered) < 2:
            answered.append(body["prompt"])
            return good(path, body)
        return 500, {}, {"error": {"message": "model crashed\nwith a second line"}}

    server = fake(reply)
    opts = ["--codeeval-api-concurrency=1", "--codeeval-api-retries=1", "--codeeval-json=r.json"]
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", *opts)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str()
    result.stdout.fnmatch_lines([f"*ERROR: --codeeval-model={server.url}: HumanEval/*: POST {server.url}/completions "
                                 "failed (--codeeval-api-retries=1): HTTP 500: *model crashed*"])
    assert "Traceback" not in out and "with a second line" not in out
    assert len(server.posts()) == 2 + 2  # the failing request and its one retry
    doc = _doc(pytester)
    assert doc["complete"] is False
    judged = doc["problems"]["humaneval"]
    assert 1 <= len(judged) <= 2 and all(p["c"] == 1 for p in judged.values())
    assert doc["config"]["generation"]["failed_requests"] == 1 and doc["config"]["generation"]["retries"] == 1
    assert len(_cache_rows(env)) == 2  # what finished before the failure stays in the cache
    # a rerun asks only for what is missing (the server still fails it)
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", *opts)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and len(server.posts()) == 4 + 2
    # with a gate, the failed source is an incomplete run: the gate fails closed and says why
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", *opts,
                                "--codeeval-fail-under=humaneval:pass@1=0.1")
    assert result.ret == 12
    gate_line = next(x for x in result.stdout.lines if x.startswith("codeeval gate"))
    assert gate_line.startswith("codeeval gate FAILED (exit 12): not every selected problem was judged in full: the "
                                f"run stopped early (ERROR: --codeeval-model={server.url}: HumanEval/"), gate_line
    assert "humaneval: 1 of 3 selected problems not judged; 1 not run: HumanEval/7" in gate_line
    # another URL is another cache identity
    healthy = fake(good)
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={healthy.url}", *opts)
    assert result.ret == pytest.ExitCode.OK and len(healthy.posts()) == 3


def test_a_hanging_server_times_out_retries_and_fails_cleanly(pytester: pytest.Pytester, env: Path, fake: Any) -> None:
    server = fake(lambda path, body: 5.0)
    started = time.monotonic()
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={server.url}", "--codeeval-api-timeout=0.5",
                                "--codeeval-api-retries=1", "--codeeval-json=r.json")
    assert time.monotonic() - started < 15
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*ERROR: --codeeval-model=*: HumanEval/0: POST */completions failed "
                                 "(--codeeval-api-retries=1): no answer within 0.5 s*"])
    assert len(server.posts()) == 2  # the timeout was retried once
    gen = _doc(pytester)["config"]["generation"]
    assert gen["requests"] == 1 and gen["retries"] == 1 and gen["failed_requests"] == 1 and gen["samples_generated"] == 0


class Gate:
    """A reply that holds requests server-side and lets the oldest go only while ``limit`` are
    in flight (or every expected request has arrived): a client that refills a slot as soon as
    an answer comes keeps the gate moving; one that waits for a batch to end stalls it (counted
    after ``stall`` seconds, then let go, so a broken client fails the test instead of hanging)."""

    def __init__(self, limit: int, total: int, answer: Reply, stall: float = 10.0) -> None:
        self.limit, self.total, self.answer, self.stall = limit, total, answer, stall
        self.cond = threading.Condition()
        self.held: list[object] = []
        self.arrived = 0
        self.seen: list[int] = []  # requests in flight as each arrived (itself included)
        self.stalls = 0

    def __call__(self, path: str, body: dict[str, Any]) -> Any:
        token = object()
        with self.cond:
            self.arrived += 1
            self.held.append(token)
            self.seen.append(len(self.held))
            self.cond.notify_all()
            if not self.cond.wait_for(lambda: self.held[0] is token and (
                    len(self.held) == self.limit or self.arrived >= self.total), self.stall):
                self.stalls += 1
                self.cond.wait_for(lambda: self.held[0] is token)
            self.held.pop(0)
            self.cond.notify_all()
        return self.answer(path, body)


def test_requests_stay_at_the_concurrency_limit_across_batches_and_items(pytester: pytest.Pytester, env: Path,
                                                                        fake: Any, problems: dict[str, Any]) -> None:
    # 3 problems x 4 samples, 3 in flight: the old barrier (batches of 2 x 3 samples) let the
    # slots empty at each batch's end; the queue refills each one as its answer comes
    gate = Gate(limit=3, total=12, answer=solver(problems))
    server = fake(gate)
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", "--codeeval-api-concurrency=3",
                                "--codeeval-n=4", "--codeeval-temperature=0.8", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    assert gate.stalls == 0
    assert gate.seen == [1, 2, 3] + [3] * 9  # full from the third request to the last
    assert len(server.posts()) == 12 and len(_cache_rows(env)) == 12
    gen = _doc(pytester)["config"]["generation"]
    assert gen["requests"] == 12 and gen["samples_generated"] == 12 and gen["retries"] == 0


def test_samples_do_not_depend_on_concurrency(pytester: pytest.Pytester, env: Path, fake: Any,
                                              problems: dict[str, Any], tmp_path: Path) -> None:
    """Same seeds, same cache entries, whichever order the answers come back in."""

    def reply(path: str, body: dict[str, Any]) -> Any:
        time.sleep(body["seed"] % 5 / 50)  # answers come back out of order
        return 200, {}, completion(f"\n    return {body['seed'] % 1000}  # {body['prompt'][-20:]!r}\n",
                                   tokens=body["seed"] % 13)

    server = fake(reply)
    rows = {}
    for concurrency in (1, 5):
        cache = tmp_path / f"c{concurrency}"
        result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", "--codeeval-n=4",
                                    "--codeeval-temperature=0.8", f"--codeeval-api-concurrency={concurrency}",
                                    f"--codeeval-cache-dir={cache}")
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
        rows[concurrency] = sorted(json.dumps(r, sort_keys=True) for r in _cache_rows(cache))
    assert len(rows[1]) == 12 and len(set(rows[1])) == 12
    assert rows[1] == rows[5]
    assert len(server.posts()) == 24


def test_a_failure_with_requests_in_flight_keeps_their_answers_and_says_one_line(
        pytester: pytest.Pytester, env: Path, fake: Any, problems: dict[str, Any]) -> None:
    good = solver(problems)

    def answer(path: str, body: dict[str, Any]) -> Any:
        if body["prompt"].endswith(problems["HumanEval/2"].prompt):
            return 500, {}, {"error": {"message": "model crashed\nwith a second line"}}
        return good(path, body)

    server = fake(Gate(limit=3, total=3, answer=answer))  # all three in flight before any answer
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", "--codeeval-api-retries=0",
                                "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*ERROR: --codeeval-model={server.url}: HumanEval/2: POST {server.url}/completions "
                                 "failed (--codeeval-api-retries=0): HTTP 500: *model crashed*"])
    assert "Traceback" not in result.stdout.str() and "with a second line" not in result.stdout.str()
    assert len(server.posts()) == 3
    doc = _doc(pytester)
    assert list(doc["problems"]["humaneval"]) == ["HumanEval/0"] and doc["problems"]["humaneval"]["HumanEval/0"]["c"] == 1
    assert doc["config"]["generation"]["failed_requests"] == 1 and doc["config"]["generation"]["samples_generated"] == 2
    # HumanEval/7's answer, in flight when HumanEval/2's failed, is in the cache
    assert sorted(r["text"].split("\n")[1].strip()[:20] for r in _cache_rows(env)) == sorted(
        problems[t].reference[len(problems[t].program_prefix):].split("\n")[0].strip()[:20]
        for t in ("HumanEval/0", "HumanEval/7"))


def test_a_session_that_stops_early_sends_nothing_more(pytester: pytest.Pytester, env: Path, fake: Any,
                                                       problems: dict[str, Any]) -> None:
    # -x after the first item: the queue held the rest of the window; the session's end stops
    # it, so the request in flight then is the last one the server sees
    broken = solver(problems, broken=True)
    hold = threading.Event()

    def reply(path: str, body: dict[str, Any]) -> Any:
        if not body["prompt"].endswith(problems["HumanEval/0"].prompt):
            hold.wait(60)
        return broken(path, body)

    server = fake(reply)
    result = pytester.runpytest(*_select(THREE), f"--codeeval-model={server.url}", "--codeeval-api-concurrency=1", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(server.posts()) == 2  # HumanEval/0's, and HumanEval/2's, held
    hold.set()
    deadline = time.monotonic() + 60
    while any(t.name.startswith("codeeval-endpoint") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name.startswith("codeeval-endpoint") for t in threading.enumerate())
    assert len(server.posts()) == 2  # HumanEval/7's was never sent
    assert len(_cache_rows(env)) == 2  # the answer in flight was still kept


def test_ctrl_c_is_not_held_up_by_requests_in_flight(pytester: pytest.Pytester, env: Path, fake: Any) -> None:
    server = fake(lambda path, body: 60.0)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *_select(THREE), "-p", "no:cacheprovider",
                             f"--codeeval-model={server.url}", "--codeeval-json=r.json"],
                            cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while len(server.posts()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.posts()) == 3  # all three in flight, none answered
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == pytest.ExitCode.INTERRUPTED
        assert time.monotonic() - interrupted < 15  # not the 60 s the server takes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    gen = _doc(pytester)["config"]["generation"]
    assert gen["requests"] == 3 and gen["retries"] == 0 and gen["samples_generated"] == 0


def test_unreachable_server_is_a_usage_error_at_once(pytester: pytest.Pytester, env: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = pytester.runpytest("benchmarks/humaneval", f"--codeeval-model={url}", "--codeeval-api-retries=5")
    assert time.monotonic() - started < 10
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --codeeval-model={url}: cannot reach {url}/v1 (*Connection refused*)"])
    assert len(result.stderr.lines) <= 2 and "Traceback" not in result.stderr.str()


def test_several_models_need_a_name(pytester: pytest.Pytester, env: Path, fake: Any, problems: dict[str, Any]) -> None:
    server = fake(solver(problems), models=("base-7b", "tuned-7b"))
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={server.url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --codeeval-model={server.url}: the server lists 2 models (base-7b, tuned-7b): "
                                 "choose one with --codeeval-api-model"])
    pytester.makeini("[pytest]\ncodeeval_api_model = tuned-7b\n")  # the ini twin
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={server.url}", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.OK
    assert [r["body"]["model"] for r in server.posts()] == ["tuned-7b"]
    assert _doc(pytester)["config"]["model"] == "tuned-7b"
    # local loading options make no sense for a served model
    result = pytester.runpytest(*_select(THREE[:1]), f"--codeeval-model={server.url}", "--codeeval-peft=adapter")
    result.stderr.fnmatch_lines(["ERROR: --codeeval-model=*: --codeeval-peft load local weights; the server decides how its model is loaded"])


def test_baseline_model_may_be_an_endpoint(pytester: pytest.Pytester, env: Path, fake: Any, problems: dict[str, Any]) -> None:
    weak = fake(solver(problems, broken=True))
    args = [*_select(THREE), "--codeeval-n=5", "--codeeval-json=r.json"]
    # the reference solutions against a served model that solves nothing: no regression
    result = pytester.runpytest(*args, "--codeeval-model=reference", f"--codeeval-baseline-model={weak.url}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    assert len(weak.posts()) == 3
    assert _doc(pytester)["gate"]["baseline"]["source"] == f"base model {weak.url}"
    # the served model as the candidate against the reference: a regression (exit 11)
    result = pytester.runpytest(*args, f"--codeeval-model={weak.url}", "--codeeval-baseline-model=reference")
    assert result.ret == 11 and len(weak.posts()) == 3  # its samples came from the cache
    two = fake(solver(problems), models=("a", "b"))
    result = pytester.runpytest(*args, "--codeeval-model=reference", f"--codeeval-baseline-model={two.url}",
                                "--codeeval-api-model=a")
    result.stderr.fnmatch_lines([f"ERROR: --codeeval-baseline-model={two.url}: the server lists 2 models (a, b): "
                                 "this endpoint must serve exactly one model"])


def test_base_url_normalisation() -> None:
    for given in ("http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/",
                  "http://h:8000/v1/completions", "http://h:8000/v1/chat/completions"):
        assert base_url(given) == "http://h:8000/v1"
    assert base_url("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"


# -- transformers serve ----------------------------------------------------------------------
def _serving_missing() -> str | None:
    missing = [m for m in SERVING if importlib.util.find_spec(m) is None]
    return f"transformers serve needs {', '.join(missing)}: pip install 'transformers[serving]'" if missing else None


@contextmanager
def running(command: list[str], port: int, log: Path, wait: float = 180) -> Iterator[str]:
    """Start a server process, wait until GET /v1/models answers, yield its URL; stop it after,
    also when the test fails."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + wait
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{command[:4]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{command[:4]} did not answer within {wait} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def transformers_serve(model: Path | str, port: int) -> list[str]:
    return [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--device", "cpu"]


@pytest.fixture(scope="session")
def served_checkpoints(tmp_path_factory: pytest.TempPathFactory, humaneval_records: list[dict[str, Any]]) -> dict[str, Path]:
    """A tiny base checkpoint (which samples when asked to: ``transformers serve`` takes
    ``do_sample`` from the checkpoint's generation config) and a tiny instruct one."""
    reason = _serving_missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("served")
    texts = [r["prompt"] + r["canonical_solution"] for r in humaneval_records]
    base = tiny_models.build(root / "tiny-base", texts)
    config = json.loads((base / "generation_config.json").read_text())
    (base / "generation_config.json").write_text(json.dumps({**config, "do_sample": True}))
    return {"base": base, "instruct": tiny_models.build(root / "tiny-instruct", texts, chat=True, seed=1)}


def _serving(checkpoints: dict[str, Path], which: str, factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve` on one of the tiny checkpoints, for the session."""
    port = _free_port()
    with running(transformers_serve(checkpoints[which], port), port, factory.mktemp("logs") / f"serve-{which}.log") as url:
        yield url


@pytest.fixture(scope="session")
def served_base(served_checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serving(served_checkpoints, "base", tmp_path_factory)


@pytest.fixture(scope="session")
def served_instruct(served_checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serving(served_checkpoints, "instruct", tmp_path_factory)


def test_transformers_serve_base_mode_then_a_rerun_from_the_cache(pytester: pytest.Pytester, env: Path, served_base: str,
                                                                  served_checkpoints: dict[str, Path]) -> None:
    args = [*_select(THREE), f"--codeeval-model={served_base}", "--codeeval-n=2", "--codeeval-max-new-tokens=24",
            "--codeeval-json=r.json"]
    first = pytester.runpytest(*args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED  # noise solves nothing
    first.stdout.fnmatch_lines([f"codeeval: generating with {served_checkpoints['base']} at {served_base} (base mode, 32 request(s) at a time)",
                                "codeeval: generation 3/3 (100%)*"])  # greedy: one sample stands for n
    doc = _doc(pytester)
    config = doc["config"]
    assert config["model"] == str(served_checkpoints["base"]) and config["endpoint"] == served_base
    assert config["prompt_mode"] == "base" and config["stop_sequences"]["humaneval"] == list(STOP)
    gen = config["generation"]
    assert gen["requests"] == gen["samples_generated"] == 3 and gen["tokens"] > 0 and gen["tokens_reported"]
    judged = doc["problems"]["humaneval"]
    assert sorted(judged) == ["HumanEval/0", "HumanEval/2", "HumanEval/7"]
    for p in judged.values():  # greedy: one sample stands for n = 2
        assert p["n"] == 2 and len(p["outcomes"]) == 2 and len(p["generation"]["tokens"]) == 1
        assert 0 < p["generation"]["tokens"][0] <= 24 and p["generation"]["finish"][0] in ("stop", "length")
        assert p["generation"]["from_cache"] == 0
    rows = _cache_rows(env)
    assert len(rows) == 3 and not any(s in r["text"] for r in rows for s in STOP)  # cut at every stop
    [meta] = (env / "generations").glob("*.meta.json")
    identity = json.loads(meta.read_text())
    assert identity["backend"] == "openai-endpoint" and identity["endpoint"] == served_base and identity["mode"] == "base"

    again = pytester.runpytest(*args)
    assert "codeeval: generating" not in again.stdout.str()
    doc2 = _doc(pytester)
    assert doc2["config"]["generation"]["requests"] == 0 and doc2["config"]["generation"]["samples_generated"] == 0
    assert doc2["problems"]["humaneval"] == {
        t: {**p, "generation": {**p["generation"], "from_cache": 1}} for t, p in judged.items()}  # greedy: 1 sample


def test_transformers_serve_seeded_samples_reproduce(pytester: pytest.Pytester, env: Path, served_base: str, tmp_path: Path) -> None:
    # transformers serve seeds torch's global generator per request: one request at a time
    args = [*_select(THREE), f"--codeeval-model={served_base}", "--codeeval-n=3", "--codeeval-temperature=0.8",
            "--codeeval-max-new-tokens=12", "--codeeval-api-concurrency=1", "--codeeval-regenerate", "--codeeval-json=r.json"]
    saved = {}
    for label, extra in {"a": [], "again": [], "seed1": ["--codeeval-seed=1"]}.items():
        out = tmp_path / f"{label}.jsonl"
        result = pytester.runpytest(*args, *extra, f"--codeeval-save-generations={out}")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        assert _doc(pytester)["config"]["generation"]["requests"] == 9
        assert all(p["n"] == 3 and len(p["generation"]["tokens"]) == 3 for p in _doc(pytester)["problems"]["humaneval"].values())
        saved[label] = [json.loads(line) for line in out.read_text().splitlines()]
    assert saved["a"] == saved["again"]  # the same seeds, the same samples
    assert saved["a"] != saved["seed1"]
    samples = [r["solution"] for r in saved["a"]]
    assert len(samples) == 9 and len(set(samples)) > 3  # the samples of a problem differ


def test_transformers_serve_xdist_agrees_with_a_serial_run(pytester: pytest.Pytester, env: Path, served_base: str, tmp_path: Path) -> None:
    four = [*THREE, "HumanEval_23"]
    common = [*_select(four), f"--codeeval-model={served_base}", "--codeeval-max-new-tokens=16", "--codeeval-regenerate"]
    saved, outcomes = {}, {}
    for label, extra in {"serial": [], "xdist": ["-n", "2"]}.items():
        out = tmp_path / f"{label}.jsonl"
        result = pytester.runpytest(*common, *extra, f"--codeeval-save-generations={out}", f"--codeeval-json={label}.json")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        saved[label] = out.read_text()
        outcomes[label] = {t: (p["n"], p["c"], p["outcomes"]) for t, p in _doc(pytester, f"{label}.json")["problems"]["humaneval"].items()}
    assert len(saved["serial"].splitlines()) == 4 and saved["serial"] == saved["xdist"]
    assert outcomes["serial"] == outcomes["xdist"] and len(outcomes["xdist"]) == 4


def test_transformers_serve_chat_mode_for_an_instruct_model(pytester: pytest.Pytester, env: Path, served_instruct: str) -> None:
    args = [*_select(THREE[:2]), f"--codeeval-model={served_instruct}", "--codeeval-max-new-tokens=16", "--codeeval-json=r.json"]
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    config = _doc(pytester)["config"]
    assert config["prompt_mode"] == "chat" and config["stop_sequences"] == {"humaneval": []}
    assert config["prompt_mode_reason"] == "auto: the served model's name says it is instruction-tuned"
    assert config["generation"]["requests"] == 2 and config["generation"]["tokens"] > 0
    assert all(0 < p["generation"]["tokens"][0] <= 16 for p in _doc(pytester)["problems"]["humaneval"].values())
    pytester.runpytest(*args, "--codeeval-chat=off")
    config = _doc(pytester)["config"]
    assert config["prompt_mode"] == "base" and config["generation"]["requests"] == 2  # another cache identity
    assert len(list((env / "generations").glob("*.jsonl"))) == 2


@pytest.fixture(scope="session")
def smollm2_folder(request: pytest.FixtureRequest) -> Path:
    """The embedded model's checkpoint in the user's cache (converted there once); the tests
    that use it are slow, so they run only when asked for."""
    from pytest_codeeval.benchmarks.groundtruth import cache_root
    from pytest_codeeval.generation import model as models

    if "slow" not in (request.config.getoption("markexpr") or "") and not os.environ.get("CODEEVAL_SLOW"):
        pytest.skip("slow (~70 s on 2 cores): run with -m slow or CODEEVAL_SLOW=1")
    reason = _serving_missing()
    if reason:
        pytest.skip(reason)
    try:
        return models.embedded_checkpoint(cache_root())
    except models.ModelError as e:
        pytest.skip(f"the embedded model is not available: {e}")


@pytest.mark.slow
@pytest.mark.smollm2
def test_transformers_serve_smollm2_generates_what_the_local_path_generates(
        pytester: pytest.Pytester, env: Path, smollm2_folder: Path, tmp_path: Path) -> None:
    """The embedded SmolLM2-135M-Instruct behind transformers serve: chat mode (by its name),
    greedy; the replies are the local path's, token for token (same message, same template)."""
    port = _free_port()
    names = ["HumanEval_0", "HumanEval_4", "HumanEval_7", "HumanEval_23", "HumanEval_53"]
    common = [*_select(names), "--codeeval-max-new-tokens=160", "--codeeval-json=r.json"]
    with running(transformers_serve(smollm2_folder, port), port, tmp_path / "serve.log") as url:
        result = pytester.runpytest(*common, f"--codeeval-model={url}", f"--codeeval-save-generations={tmp_path / 'served.jsonl'}")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    doc = _doc(pytester)
    assert doc["config"]["prompt_mode"] == "chat" and doc["config"]["generation"]["requests"] == 5
    solved = doc["problems"]["humaneval"]
    assert solved["HumanEval/53"]["c"] == 1  # add(x, y): solved locally too (test_generation)
    print(f"SmolLM2 via transformers serve: pass@1 {doc['partial']['humaneval']['pass@1']:.2f} on {len(names)} problems, "
          f"{doc['config']['generation']['tokens_per_second']} tokens/s")
    local = pytester.runpytest(*common, f"--codeeval-model={smollm2_folder}", f"--codeeval-save-generations={tmp_path / 'local.jsonl'}")
    assert _doc(pytester)["config"]["prompt_mode"] == "chat"
    assert (tmp_path / "served.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()
    # the same verdicts; the server's token counts are larger: it goes on past the closed code
    # block (nothing tells it to stop there) and the text is cut here
    local_solved = _doc(pytester)["problems"]["humaneval"]
    assert local.ret == result.ret and {t: p["outcomes"] for t, p in local_solved.items()} == {
        t: p["outcomes"] for t, p in solved.items()}
    assert all(solved[t]["generation"]["tokens"][0] >= p["generation"]["tokens"][0] for t, p in local_solved.items())


# -- llama.cpp's server ----------------------------------------------------------------------
LLAMA_PYTHON = os.environ.get("CODEEVAL_LLAMA_PYTHON")  # an interpreter whose environment has llama-cpp-python[server]


def _llama_cpp_server() -> bool:
    if LLAMA_PYTHON:  # its own environment: its fastapi/starlette pins need not agree with transformers[serving]'s
        return subprocess.run([LLAMA_PYTHON, "-c", "import llama_cpp.server"], capture_output=True).returncode == 0
    try:
        return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llama_cpp.server") is not None
    except ImportError:
        return False


@pytest.mark.skipif(not _llama_cpp_server(), reason="llama-cpp-python[server] not installed (it compiles llama.cpp, "
                    "~13 min; or point CODEEVAL_LLAMA_PYTHON at an interpreter that has it)")
def test_llama_cpp_server_end_to_end(pytester: pytest.Pytester, env: Path, tmp_path: Path) -> None:
    from pytest_codeeval.benchmarks.groundtruth import cache_root
    from pytest_codeeval.generation import model as models

    gguf = models._embedded_gguf(cache_root())
    port = _free_port()
    command = [LLAMA_PYTHON or sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", "2"]
    with running(command, port, tmp_path / "llama.log") as url:
        args = [*_select(["HumanEval_23", "HumanEval_53"]), f"--codeeval-model={url}", "--codeeval-chat=on",
                "--codeeval-max-new-tokens=128", "--codeeval-json=r.json"]
        result = pytester.runpytest(*args)
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        doc = _doc(pytester)
        assert doc["config"]["generation"]["requests"] == 2 and doc["config"]["generation"]["tokens_reported"]
        assert all(p["n"] == 1 and p["generation"]["tokens"][0] > 0 for p in doc["problems"]["humaneval"].values())
        again = pytester.runpytest(*args)
        assert again.ret == result.ret and _doc(pytester)["config"]["generation"]["requests"] == 0
