"""One model for every xdist worker: a generation service process and its client.

Under ``-n N`` with a local model, each worker holding its own copy would cost N times the
memory (and, on CPU, N processes fighting over the cores for the same matrix products). Instead
the xdist controller starts one service per model copy (one per CUDA device, one on a CPU-only
machine); workers keep everything else (tokenizer, prompts, cache reads, the sandbox) and send
the service the samples their upcoming items lack. The service decodes the requests of every
worker in one continuously refilled batch (urgent ones, which a worker's current item waits
for, first; the rest shortest prompt first), writes each finished sample to the generation cache
and sends it to every connected worker, so a worker's next items usually find their samples
ready. The model is loaded on the first request: a run served from the cache loads nothing.

Protocol (``multiprocessing.connection`` over a Unix socket, authenticated with a random key):

* worker -> service: ``("hello", setup)`` (the resolved model spec, identity, sampling, batch
  size, cache root; the first hello configures the service, later ones must agree),
  ``("want", requests, urgent_keys)``, ``("stats",)``, ``("bye",)``;
* service -> worker: ``("done", key, text, tokens, reason)``, ``("error", message)``,
  ``("stats", dict)``.

Run as ``python -m pytest_codeeval.generation.service ADDRESS`` with the key in the
``CODEEVAL_SERVICE_KEY`` environment variable (hex); it prints ``ready`` once it listens.

A worker's side is :class:`ServiceBackend`, a streaming
:class:`~pytest_codeeval.generation.backends.Backend`: a transport in front of the local loop,
which runs in the service. Knows nothing of pytest.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import AuthenticationError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_codeeval.generation import SourceError
from pytest_codeeval.generation.backends import Done, Job, Tick
from pytest_codeeval.generation.backends.local import auto_rows, halved_rows, request
from pytest_codeeval.generation.cache import Entry

if TYPE_CHECKING:
    from pytest_codeeval.generation.model import ModelSpec
    from pytest_codeeval.generation.planner import GenerationOptions

KEY_ENV = "CODEEVAL_SERVICE_KEY"
START_TIMEOUT = 120.0  # seconds for the service to import torch and listen
STATS_TIMEOUT = 30.0  # seconds the controller waits for a service's counters
POLL_TIMEOUT = 2.0  # seconds the progress display waits for them (it asks again soon)


class ServiceError(RuntimeError):
    """The generation service could not start, or failed while generating."""


# -- the host side (the xdist controller) ------------------------------------------------------
@dataclass
class ServiceHost:
    """A running service process, as the controller sees it."""

    address: str
    authkey: bytes
    process: subprocess.Popen[bytes]
    _watcher: ServiceClient | None = field(default=None, repr=False)

    @classmethod
    def start(cls, device: str | None = None) -> ServiceHost:
        """Start a service process (pinned to CUDA device ``device`` when given) and wait until
        it listens. Torch is imported there, not here."""
        folder = tempfile.mkdtemp(prefix="codeeval-gen-")
        address = os.path.join(folder, "socket")
        key = secrets.token_bytes(16)
        env = dict(os.environ, **{KEY_ENV: key.hex()})
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        # transformers' warnings and progress bars would land on the controller's terminal
        log = open(os.path.join(folder, "service.log"), "wb")
        with log:
            process = subprocess.Popen([sys.executable, "-m", "pytest_codeeval.generation.service", address],
                                       stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=log, env=env)
        host = cls(address, key, process)
        assert process.stdout is not None
        line = _readline(process.stdout, START_TIMEOUT)
        if line.strip() != b"ready":
            tail = host.log_tail()
            host.stop()
            raise ServiceError(f"the generation service did not start (exit status {process.poll()})"
                               + (f": {tail}" if tail else ""))
        return host

    def log_tail(self) -> str:
        """The last line the service wrote to its log (its stderr)."""
        try:
            lines = Path(self.address).with_name("service.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def stats(self) -> dict[str, Any] | None:
        """The service's counters (model loads, samples, tokens, seconds), or None if gone or
        silent for STATS_TIMEOUT seconds (a wedged service must not hang the session's end)."""
        if self.process.poll() is not None:
            return None
        found: list[dict[str, Any]] = []

        def ask() -> None:
            try:
                client = ServiceClient(self.address, self.authkey)
            except (OSError, EOFError, AuthenticationError):
                return
            try:
                found.append(client.stats())
            except ServiceError:
                pass
            finally:
                client.close()

        asking = threading.Thread(target=ask, name="codeeval-service-stats", daemon=True)
        asking.start()
        asking.join(STATS_TIMEOUT)
        return found[0] if found else None

    def poll(self) -> dict[str, Any] | None:
        """The service's counters now, for the progress display (which asks every second or
        so, from its own thread): over one connection kept open, None when the service is gone
        or did not answer within POLL_TIMEOUT seconds."""
        if self.process.poll() is not None:
            return None
        try:
            if self._watcher is None:
                self._watcher = ServiceClient(self.address, self.authkey)
            return self._watcher.stats(POLL_TIMEOUT)
        except (OSError, EOFError, AuthenticationError, ServiceError):
            return None

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a wedged forward pass
                self.process.kill()
                self.process.wait()
        import shutil

        shutil.rmtree(os.path.dirname(self.address), ignore_errors=True)


def _readline(stream: Any, timeout: float) -> bytes:
    """A line from ``stream``, or b"" after ``timeout`` seconds (a service that never starts)."""
    found: list[bytes] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else b""


# -- the client side (an xdist worker) ----------------------------------------------------------
class ServiceClient:
    """A worker's connection: sends wanted samples, collects every finished one."""

    def __init__(self, address: str, authkey: bytes, on_done: Callable[[Any, str, int, str], None] | None = None) -> None:
        from multiprocessing.connection import Client

        self._conn = Client(address, family="AF_UNIX", authkey=authkey)
        self._send_lock = threading.Lock()
        self._state = threading.Condition()
        self._done: set[Any] = set()
        self._error: str | None = None
        self._stats: dict[str, Any] | None = None
        self._on_done = on_done
        self._reader = threading.Thread(target=self._read, name="codeeval-service-client", daemon=True)
        self._reader.start()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                with self._state:
                    self._error = self._error or "the generation service went away"
                    self._state.notify_all()
                return
            kind = message[0]
            if kind == "done":
                _, key, text, tokens, reason = message
                if self._on_done is not None:
                    self._on_done(key, text, tokens, reason)
                with self._state:
                    self._done.add(key)
                    self._state.notify_all()
            elif kind == "error":
                with self._state:
                    self._error = message[1]
                    self._state.notify_all()
            elif kind == "stats":
                with self._state:
                    self._stats = message[1]
                    self._state.notify_all()

    def hello(self, setup: dict[str, Any]) -> None:
        self._send(("hello", setup))

    def want(self, requests: Sequence[Any], urgent: Sequence[Any]) -> None:
        self._send(("want", list(requests), list(urgent)))

    def wait(self, keys: Sequence[Any]) -> None:
        """Block until every key is done; raise :class:`ServiceError` if the service failed."""
        with self._state:
            while True:
                if all(k in self._done for k in keys):
                    return
                if self._error is not None:
                    raise ServiceError(self._error)
                self._state.wait()

    def stats(self, timeout: float | None = None) -> dict[str, Any]:
        """The service's counters (asked anew on every call); :class:`ServiceError` if it failed,
        or did not answer within ``timeout`` seconds."""
        with self._state:
            self._stats = None
        self._send(("stats",))
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            while self._stats is None:
                if self._error is not None:
                    raise ServiceError(self._error)
                left = 30.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise ServiceError("the generation service did not answer")
                self._state.wait(left)
            return self._stats

    def close(self) -> None:
        """Leave, and stop the reader before the descriptor is closed: a reader still blocked
        on a closed descriptor number would read from whatever socket reuses it next (it once
        ate the handshake of the controller's next connection)."""
        try:
            self._send(("bye",))
            socket.socket(fileno=os.dup(self._conn.fileno())).shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(STATS_TIMEOUT)
        self._conn.close()


class ServiceBackend:
    """A worker's :class:`~pytest_codeeval.generation.backends.Backend` under xdist: the samples
    its upcoming items lack go to the generation service (this worker's share of them, with
    several model copies; its current item's always), which decodes them with the other
    workers' while this worker judges. The service writes every finished sample to the cache
    and sends it to every worker; here it is only noted."""

    stores = True
    streams = True

    def __init__(self, service: tuple[str, str], share: tuple[int, int], spec: Callable[[], ModelSpec],
                 options: GenerationOptions, cache_root: Path) -> None:
        self.address, self.key = service
        # (this worker's copy, copies): with several model copies each proactively generates its
        # share of the upcoming problems; a worker's own current problem is always asked for
        self.share = share
        self._spec = spec
        self.options = options
        self.cache_root = cache_root
        self._client: ServiceClient | None = None
        self._sent: set[tuple[str, int]] = set()  # samples already asked of the service

    def rows(self) -> int:  # pragma: no cover - a streaming backend is handed whole windows
        return 1

    def open(self, identity: dict[str, Any], done: Done) -> None:
        """Connect; every sample the service finishes (any worker's) is handed to ``done``."""

        def finished(key: Any, text: str, tokens: int, reason: str) -> None:
            key = (key[0], key[1])
            done(Job(key, "", (), (), 0), Entry(text, tokens, reason))

        o = self.options
        try:
            self._client = ServiceClient(self.address, bytes.fromhex(self.key), finished)
            self._client.hello(setup_message(self._spec(), identity, o.sampling, o.batch_size, self.cache_root,
                                             o.regenerate))
        except (OSError, EOFError, AuthenticationError) as e:
            raise SourceError(f"cannot reach the generation service at {self.address}: {e}") from None

    def generate(self, jobs: Sequence[Job], urgent: Sequence[Job], done: Done, tick: Tick) -> None:
        assert self._client is not None
        mine, copies = self.share
        now = {j.key for j in urgent}
        wanted = [j for j in jobs if j.key in now or int(j.key[0][:8], 16) % copies == mine]
        new = [j for j in wanted if j.key not in self._sent]
        self._sent.update(j.key for j in new)
        self._client.want([request(j) for j in new], list(now))
        try:
            self._client.wait(list(now))
        except ServiceError as e:
            raise SourceError(str(e)) from None

    def describe(self) -> dict[str, Any]:
        from pytest_codeeval.generation import model as models

        return {"dtype": None, "batch_size": self.options.batch_size or "auto", "libraries": models.library_versions()}

    def counters(self) -> dict[str, Any]:
        # the service's own counters reach the results file through the controller
        return {"model_load_seconds": None, "model_loads": 0}


# -- the service itself -------------------------------------------------------------------------
@dataclass
class _Connection:
    conn: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    generates: bool = False  # said hello: a worker, told of every finished sample (a watcher is not)

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock:
            try:
                self.conn.send(message)
            except OSError:  # a worker that left; the others still get their samples
                pass


class Service:
    """Pending requests from every worker, decoded in one continuously refilled batch."""

    def __init__(self) -> None:
        self.state = threading.Condition()
        self.setup: dict[str, Any] | None = None
        self.pending: dict[Any, Any] = {}  # key -> Request not yet in the batch
        self.urgent: dict[Any, None] = {}  # keys some worker's current item waits for (ordered)
        self.running: dict[Any, Any] = {}  # key -> Request in the batch
        self.finished: dict[Any, tuple[str, int, str]] = {}
        self.connections: list[_Connection] = []
        self.error: str | None = None
        self.cache: Any = None
        self.decoding_since: float | None = None  # perf_counter() at the start of the decode running now
        self.stats: dict[str, Any] = {"model_loads": 0, "load_seconds": None, "samples_generated": 0, "tokens": 0,
                                      "seconds": 0.0, "workers": 0, "pid": os.getpid(), "device": None}

    # -- messages from workers ------------------------------------------------------------------
    def serve_connection(self, conn: Any) -> None:
        me = _Connection(conn)
        with self.state:
            self.connections.append(me)
        try:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return
                kind = message[0]
                if kind == "hello":
                    self._hello(me, message[1])
                elif kind == "want":
                    self._want(me, message[1], message[2])
                elif kind == "stats":
                    with self.state:
                        stats = dict(self.stats)
                        if self.decoding_since is not None:  # the running decode's time so far
                            stats["seconds"] += time.perf_counter() - self.decoding_since
                    me.send(("stats", stats))
                elif kind == "bye":
                    return
        finally:
            with self.state:
                self.connections.remove(me)
            conn.close()

    def _hello(self, me: _Connection, setup: dict[str, Any]) -> None:
        from pytest_codeeval.generation.cache import GenerationCache

        with self.state:
            self.stats["workers"] += 1  # connections that generate (the controller's only asks for stats)
            me.generates = True
            if self.setup is None:
                self.setup = setup
                self.cache = GenerationCache(Path(setup["cache_root"]) / "generations", setup["identity"])
                self.state.notify_all()
            elif setup["identity"] != self.setup["identity"]:
                me.send(("error", "the generation service serves another model or other settings"))

    def _want(self, me: _Connection, requests: list[Any], urgent: list[Any]) -> None:
        with self.state:
            if self.error is not None:
                me.send(("error", self.error))
                return
            regenerate = bool(self.setup and self.setup.get("regenerate"))
            if self.cache is not None and not regenerate:
                self.cache.refresh()
            for r in requests:
                key = r.key
                if key in self.finished:
                    me.send(("done", key, *self.finished[key]))
                    continue
                cached = self.cache.get(*key) if self.cache is not None and not regenerate else None
                if cached is not None:  # another copy (or an earlier run) finished it
                    me.send(("done", key, cached.text, cached.tokens, cached.reason))
                    continue
                if key not in self.running:
                    self.pending.setdefault(key, r)
            for key in urgent:
                if key in self.pending:
                    self.urgent[key] = None
            self.state.notify_all()

    # -- the decoding loop -----------------------------------------------------------------------
    def take(self, room: int) -> list[Any]:
        """Up to ``room`` requests for the batch: urgent ones first, then shortest prompts."""
        with self.state:
            chosen = [k for k in self.urgent if k in self.pending][:room]
            if len(chosen) < room:
                rest = sorted((k for k in self.pending if k not in self.urgent),
                              key=lambda k: len(self.pending[k].prompt_ids))
                chosen += rest[: room - len(chosen)]
            taken = []
            for key in chosen:
                self.urgent.pop(key, None)
                request = self.pending.pop(key)
                self.running[key] = request
                taken.append(request)
            return taken

    def finish(self, key: Any, text: str, tokens: int, reason: str) -> None:
        from pytest_codeeval.generation.cache import Entry

        self.cache.put(key[0], key[1], Entry(text, tokens, reason))  # persisted before anyone hears
        with self.state:
            self.running.pop(key, None)
            self.finished[key] = (text, tokens, reason)
            self.stats["samples_generated"] += 1
            self.stats["tokens"] += tokens
            receivers = [c for c in self.connections if c.generates]
        for c in receivers:
            c.send(("done", key, text, tokens, reason))

    def fail(self, message: str) -> None:
        with self.state:
            self.error = message
            receivers = list(self.connections)
        for c in receivers:
            c.send(("error", message))

    def run(self) -> None:
        """Wait for work, load the model on the first, decode until nothing is pending; repeat."""
        loaded = None
        rows: int | None = None
        while True:
            with self.state:
                while not self.pending or self.setup is None:
                    self.state.wait()
                setup = self.setup
            try:
                if loaded is None:
                    loaded = self._load(setup)
                    rows = setup["batch_size"] or auto_rows()
                assert rows is not None
                with self.state:
                    started = self.decoding_since = time.perf_counter()
                try:
                    self._decode(loaded, setup, rows)
                except Exception as e:  # out of memory: halve the rows, keep what finished, go on
                    halved = halved_rows(e, rows, fixed=setup["batch_size"] is not None)
                    if halved is None:
                        raise
                    rows = halved
                    with self.state:  # what was in the batch waits again
                        self.pending.update(self.running)
                        self.running.clear()
                finally:
                    with self.state:
                        self.decoding_since = None
                        self.stats["seconds"] += time.perf_counter() - started
            except Exception as e:
                self.fail(f"generation failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                return

    def _load(self, setup: dict[str, Any]) -> Any:
        from pytest_codeeval.generation import model as models

        started = time.perf_counter()
        loaded = models.load(models.ModelSpec(**setup["spec"]))
        with self.state:
            self.stats["model_loads"] += 1
            self.stats["load_seconds"] = round(time.perf_counter() - started, 2)
            self.stats["device"] = str(loaded.device)
            self.stats["dtype"] = str(loaded.dtype)
        return loaded

    def _decode(self, loaded: Any, setup: dict[str, Any], rows: int) -> None:
        from pytest_codeeval.generation import model as models
        from pytest_codeeval.generation.decoding import Finished, Sampling, generate

        def finished(f: Finished) -> None:
            self.finish(f.request.key, f.text, f.tokens, f.reason)

        generate(loaded.model, loaded.tokenizer, [], Sampling(**setup["sampling"]), models.eos_ids(loaded),
                 finished, max_rows=rows, more=self.take)


def setup_message(spec: Any, identity: dict[str, Any], sampling: Any, batch_size: int | None,
                  cache_root: Path, regenerate: bool) -> dict[str, Any]:
    """What a worker's hello carries: everything the service needs to generate its samples."""
    return {"spec": asdict(spec), "identity": identity, "sampling": asdict(sampling), "batch_size": batch_size,
            "cache_root": str(cache_root), "regenerate": regenerate}


def _exit_with_parent(parent: int) -> None:
    """A controller killed with SIGKILL cannot stop its service: the service notices the
    orphaning (its parent changes) and exits. Samples already finished are in the cache."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def main(argv: list[str]) -> int:
    from multiprocessing.connection import Listener

    address = argv[0]
    key = bytes.fromhex(os.environ.pop(KEY_ENV))
    listener = Listener(address, family="AF_UNIX", authkey=key)
    service = Service()

    def accept() -> None:
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError, AuthenticationError):  # a client that failed to authenticate or left
                continue
            threading.Thread(target=service.serve_connection, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, name="codeeval-service-accept", daemon=True).start()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="codeeval-service-watch", daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    service.run()
    # a failed service stays up to tell late workers why, until the controller stops it
    threading.Event().wait()
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
