"""The fork server: a bare interpreter that forks one supervisor per sample.

Started by :class:`~pytest_codeeval.sandbox.client.Sandbox` as ``python -I`` with only the
standard library and this package's sandbox modules imported, so a fork costs about a
millisecond rather than the ~20 ms it costs from a process holding torch. Requests arrive on
stdin and verdicts leave on stdout, one JSON object per line:

    {"op": "tests", "key": K, "stages": [[NAME, SOURCE], ...], "data": PATH|null}
                                                    compile a problem's checks once
    {"op": "tests", "key": K, "stages": [["tests", DRIVER]], "language": {"name", "tools", ...}}
                                                    a test driver of another language, kept as text
    {"op": "run", "id": I, "tests": K, "source": P, "timeout": T}
    -> {"id": I, "outcome": ..., "detail": ..., "stdout": ..., ...}

End of stdin (the plugin closed it, or died) shuts the server down: every running sample is
killed and the server's temporary directory removed.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import pickle
import selectors
import signal
import sys
import time
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from pytest_codeeval.sandbox import compiled, harness, isolation, proc, supervisor
from pytest_codeeval.sandbox.protocol import LineReader, encode

TESTS_FILENAME = "<tests>"
DATA_CACHE = 4  # problems whose data (pickled expected outputs) stay loaded in this process


@dataclass(frozen=True)
class _Spec:
    stages: list[tuple[str, CodeType]]
    data: str | None  # a pickle file of data for the checks
    sources: list[tuple[str, str]]
    language: dict[str, Any] | None = None  # not Python: compiled and run by compiled.py


@dataclass
class _Job:
    request: dict[str, Any]
    supervisor_pid: int
    fd: int
    workdir: str
    deadline: float  # the server's backstop, beyond the supervisor's own deadline
    slot: int
    sample_pid: int | None = None
    buf: bytes = b""
    messages: list[dict[str, Any]] = field(default_factory=list)


class ForkServer:
    def __init__(self, workers: int, limits: dict[str, Any], base: str, level: dict[str, Any]) -> None:
        self.workers = max(1, workers)
        # one unprivileged uid per worker slot (root servers only): samples running at the same
        # time cannot signal each other or share RLIMIT_NPROC
        self.uid_per_sample = bool(level.get("uid_per_sample"))
        self.free_slots = list(range(self.workers))
        self.bwrap = level["bwrap"] if level["mode"] == "bwrap" else None
        self.limits = limits
        self.base = base  # made by the plugin, which removes it too if this process is killed
        self.tests: dict[str, _Spec | str] = {}  # key -> compiled checks, or why they are unusable
        self.data: collections.OrderedDict[str, Any] = collections.OrderedDict()  # path -> data, LRU
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.jobs: dict[int, _Job] = {}  # by pipe fd
        self.sel = selectors.DefaultSelector()

    # -- main loop ----------------------------------------------------------------------------
    def serve(self) -> None:
        proc.become_subreaper()  # orphans of killed supervisors come here to be killed
        # Objects that exist now are never collected: a child's garbage collector then leaves
        # the pages it shares with this process untouched, and forks stay cheap.
        gc.freeze()
        reader = LineReader(0)
        self.sel.register(0, selectors.EVENT_READ, None)
        try:
            while True:
                while self.queue and len(self.jobs) < self.workers:
                    self._start(self.queue.popleft())
                for key, _ in self.sel.select(self._next_wakeup()):
                    if key.data is None:
                        messages, ended = reader.read()
                        for m in messages:
                            self._handle(m)
                        if ended:
                            return
                    else:
                        self._pump(key.data)
                self._enforce_backstops()
        finally:
            self.shutdown()

    def _next_wakeup(self) -> float | None:
        if not self.jobs:
            return None
        return max(0.0, min(j.deadline for j in self.jobs.values()) - time.monotonic())

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "tests" and message.get("language"):
            sources = [(str(name), str(src)) for name, src in message["stages"]]
            self.tests[message["key"]] = _Spec([], None, sources, dict(message["language"]))
        elif op == "tests":
            try:
                stages = [(str(name), harness.compile_program(src, TESTS_FILENAME if len(message["stages"]) == 1
                                                              else f"<tests:{name}>"))
                          for name, src in message["stages"]]
                sources = [(str(name), str(src)) for name, src in message["stages"]]
                self.tests[message["key"]] = _Spec(stages, message.get("data"), sources)
            except BaseException as e:  # a broken benchmark: every sample of it errors
                self.tests[message["key"]] = f"the checks do not compile: {type(e).__name__}: {e}"
        elif op == "run":
            self.queue.append(message)

    # -- one job ------------------------------------------------------------------------------
    def _start(self, request: dict[str, Any]) -> None:
        spec = self.tests.get(request["tests"])
        if not isinstance(spec, _Spec):
            detail = spec or "unknown checks (internal error: tests were not sent)"
            self._reply(request, {"outcome": "crashed", "detail": detail, "stages": []})
            return
        if spec.language is not None and self.bwrap:
            self._reply(request, {"outcome": "crashed", "stages": [], "detail": "bwrap isolation runs Python "
                                  "samples only; use --codeeval-isolation=namespaces or fork for other languages"})
            return
        try:
            # a bubblewrapped sample is a fresh interpreter: it loads the data itself
            data = None if self.bwrap else self._load_data(spec.data)
            checks = harness.Checks(spec.stages, data, spec.sources, spec.data)
        except BaseException as e:
            detail = f"the checks' data cannot be loaded: {type(e).__name__}: {e}"
            self._reply(request, {"outcome": "crashed", "detail": detail, "stages": []})
            return
        # the supervisor makes and removes the directory: that work then runs on every core,
        # not serially in this process
        workdir = os.path.join(self.base, f"s{request['id']}")
        slot = self.free_slots.pop()
        sample_uid = isolation.SANDBOX_UID + slot if self.uid_per_sample else None
        r, w = os.pipe()
        timeout = float(request["timeout"])
        pid = os.fork()
        if pid == 0:  # the supervisor
            code = 0
            try:
                os.close(r)
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)  # never hold the plugin's pipes: its EOF must mean our death
                os.dup2(devnull, 1)
                if spec.language is not None:
                    compiled.supervise(spec.language, request["source"], spec.sources[0][1], workdir, timeout,
                                       self.limits, w, sample_uid)
                else:
                    supervisor.supervise(request["source"], checks, workdir, timeout, self.limits, w, sample_uid,
                                         self.bwrap)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        os.set_blocking(r, False)
        backstop = (compiled.backstop(spec.language, timeout) if spec.language is not None
                    else supervisor.wall_backstop(timeout))
        deadline = time.monotonic() + backstop + float(self.limits["grace_seconds"])
        job = _Job(request, pid, r, workdir, deadline, slot)
        self.jobs[r] = job
        self.sel.register(r, selectors.EVENT_READ, job)

    def _load_data(self, path: str | None) -> Any:
        """Unpickle a problem's data once; forked samples then share it without copying."""
        if path is None:
            return None
        if path in self.data:
            self.data.move_to_end(path)
            return self.data[path]
        with open(path, "rb") as f:  # written by the plugin's ground-truth step, not by samples
            value = pickle.load(f)
        self.data[path] = value
        while len(self.data) > DATA_CACHE:
            self.data.popitem(last=False)
        return value

    def _pump(self, job: _Job) -> None:
        try:
            chunk = os.read(job.fd, 1 << 20)
        except BlockingIOError:
            return
        if chunk:
            job.buf += chunk
            *lines, job.buf = job.buf.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "pid" in message:  # the step now running (compiled languages have two)
                    job.sample_pid = int(message["pid"])
                else:
                    job.messages.append(message)
            return
        self._finish(job)

    def _finish(self, job: _Job, verdict: dict[str, Any] | None = None) -> None:
        self.sel.unregister(job.fd)
        os.close(job.fd)
        del self.jobs[job.fd]
        self.free_slots.append(job.slot)
        abnormal = verdict is not None or not job.messages
        if verdict is None:
            verdict = job.messages[-1] if job.messages else None
        if verdict is None:
            verdict = {
                "outcome": "crashed",
                "detail": "the sample's supervisor was killed before it could report "
                "(did the sample kill its parent?)",
            }
        if job.sample_pid is not None:
            proc.kill_group(job.sample_pid)
        try:
            done, _ = os.waitpid(job.supervisor_pid, os.WNOHANG)
            if not done:
                os.kill(job.supervisor_pid, signal.SIGKILL)
                os.waitpid(job.supervisor_pid, 0)
        except ChildProcessError:
            pass
        if abnormal:  # whatever escaped a dead supervisor was reparented here
            proc.kill_and_reap_children(spare=frozenset(j.supervisor_pid for j in self.jobs.values()))
        if abnormal and os.path.exists(job.workdir):  # its supervisor could not remove it
            proc.force_rmtree(job.workdir)
        self._reply(job.request, verdict)

    def _enforce_backstops(self) -> None:
        now = time.monotonic()
        for job in [j for j in self.jobs.values() if j.deadline <= now]:
            try:
                os.kill(job.supervisor_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            timeout = float(job.request["timeout"])
            self._finish(
                job,
                {"outcome": "timeout", "detail": f"timed out after {timeout:g} s (supervisor unresponsive)"},
            )

    def _reply(self, request: dict[str, Any], verdict: dict[str, Any]) -> None:
        data = encode({**verdict, "id": request["id"]})
        view = memoryview(data)
        while view:  # stdout is a blocking pipe that the plugin's reader thread always drains
            view = view[os.write(1, view) :]

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            if job.sample_pid is not None:
                proc.kill_group(job.sample_pid)
        proc.kill_and_reap_children()
        # the plugin removes the directory itself: inside a mount namespace its parent is
        # read-only here, so only what it holds can go
        for name in os.listdir(self.base):
            proc.force_rmtree(os.path.join(self.base, name))


def main() -> None:
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the plugin decides when we stop
    try:
        level = isolation.enter(str(config.get("isolation", "auto")), str(config["base"]))
    except isolation.IsolationError as e:
        os.write(1, encode({"ready": False, "error": f"isolation refused by the kernel: {e}"}))
        sys.exit(2)
    if level["mode"] == "fork":  # as PID 1 of its namespaces the server ignores SIGTERM instead
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ForkServer(int(config["workers"]), config["limits"], str(config["base"]), level)
    os.write(1, encode({"ready": True, "isolation": level}))
    server.serve()


if __name__ == "__main__":
    main()
