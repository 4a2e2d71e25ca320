"""The plugin's handle on the fork server: submit programs, get futures of verdicts.

Thread-safe. One reader thread resolves futures as verdicts arrive. If the server dies (nothing a
sample does should make it, but the host may), every sample in flight is recorded as crashed and
the next submission starts a fresh server: nothing already judged is lost.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import select
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from pytest_codeeval.problem import Outcome, SampleResult
from pytest_codeeval.sandbox import languages, proc
from pytest_codeeval.sandbox.protocol import Limits, LineReader, encode, isolated_command

log = logging.getLogger(__name__)  # debug only: pytest --log-level=DEBUG shows the server's life

# What a sample sees of the environment: nothing of the parent's (tokens, keys, proxies).
_CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


class SandboxError(Exception):
    """The sandbox cannot run at all on this platform."""


class _Server:
    """One fork-server process and the futures waiting on it."""

    def __init__(self, workers: int, limits: Limits, isolation: str, compile_batch: str = "auto") -> None:
        # The server's temporary directory is made here so that it can be removed here too
        # when the server is killed (it removes it itself when it exits normally).
        self.base = tempfile.mkdtemp(prefix="codeeval-sandbox-")
        os.chmod(self.base, 0o711)  # samples running as their own uid must reach their cwd in it
        config = json.dumps({"workers": workers, "limits": limits.to_json(), "base": self.base,
                             "isolation": isolation, "compile_batch": compile_batch})
        try:
            self.proc = subprocess.Popen(
                [*isolated_command("pytest_codeeval.sandbox.server"), config],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_CHILD_ENV,
                cwd="/",
                start_new_session=True,  # Ctrl-C in the terminal reaches pytest, not the samples
            )
        except BaseException:
            os.rmdir(self.base)
            raise
        self.pending: dict[int, Future[SampleResult]] = {}
        # the longest a pending sample may take once started (its backstops): how long the
        # server may stay silent while samples are pending before it is taken for hung
        self.longest = 0.0
        self.last_heard = time.monotonic()
        self.sent_tests: set[str] = set()
        self.alive = True
        self.ready: Future[dict[str, Any]] = Future()  # the isolation in force, once started
        self.reader: threading.Thread | None = None


class Sandbox:
    """Runs programs against checks in the fork server, ``workers`` at a time."""

    def __init__(self, workers: int, limits: Limits | None = None, isolation: str = "auto",
                 compile_batch: str = "auto") -> None:
        """``compile_batch``: ``auto`` judges another language's samples of a problem as a group
        (each distinct program compiled once, verdicts unchanged; see docs/sandbox.md), ``off``
        each sample on its own."""
        if not hasattr(os, "fork"):
            raise SandboxError("the sandbox needs os.fork (Linux or macOS)")
        if compile_batch not in ("auto", "off"):
            raise ValueError(f"compile_batch: expected auto or off, got {compile_batch!r}")
        self.workers = max(1, workers)
        self.limits = limits or Limits()
        self.isolation_mode = isolation
        self.compile_batch = compile_batch
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._server: _Server | None = None
        self.starts = 0  # how many servers were started: more than one means one died

    # -- public -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server now (before heavy imports make forking this process expensive)."""
        with self._lock:
            self._ensure_started()

    def submit(
        self,
        source: str,
        tests: str | Sequence[tuple[str, str]],
        timeout: float,
        data_path: str | None = None,
        language: str = "python",
        *,
        prelude: str = "",
        entry_point: str | None = None,
        label: str = "",
    ) -> Future[SampleResult]:
        """Queue ``source`` followed by ``tests``; the future holds the verdict.

        ``tests`` is one check program, or named stages run in order (each confirmed on its own,
        see :class:`~pytest_codeeval.sandbox.harness.Checks`). ``data_path`` names a pickle the
        server loads once and hands to the checks as ``__codeeval_data__``.

        The tests run in a trusted judge, outside the sample (see :mod:`~pytest_codeeval.sandbox.judge`):
        ``prelude`` is trusted code whose definitions they may use (HumanEval's prompt, with
        helpers such as ``poly``); ``entry_point`` names the function under test, bound in
        their namespace; ``label`` (the task id) names the tests in failure reports.

        Another ``language`` (see :mod:`~pytest_codeeval.sandbox.languages`): ``tests`` is the
        test driver appended to ``source``; the file is compiled, then run, with ``timeout``
        limiting the run.
        """
        return self.submit_many([source], tests, timeout, data_path, language, prelude=prelude,
                                entry_point=entry_point, label=label)[0]

    def submit_many(
        self,
        sources: Sequence[str],
        tests: str | Sequence[tuple[str, str]],
        timeout: float,
        data_path: str | None = None,
        language: str = "python",
        *,
        prelude: str = "",
        entry_point: str | None = None,
        label: str = "",
    ) -> list[Future[SampleResult]]:
        """:meth:`submit` for several programs of one problem: one future each, in order.

        The problem's key is computed once and every request goes to the server in one write
        (one wake-up of the server rather than one per sample)."""
        futures: list[Future[SampleResult]] = [Future() for _ in sources]
        if not futures:
            return futures
        stages = [("tests", tests)] if isinstance(tests, str) else [(n, s) for n, s in tests]
        spec = None
        if language != "python":
            try:  # found and prepared here, with the user's PATH: the server's is minimal
                runner = languages.get(language)
                spec = {"name": language, "tools": languages.toolchain(language),
                        "compile_timeout": runner.compile_timeout}
            except languages.ToolchainMissing as e:
                for future in futures:
                    future.set_result(SampleResult(Outcome.CRASHED, str(e)))
                return futures
        key = hashlib.sha256(json.dumps([stages, data_path, spec, prelude, entry_point, label]).encode()).hexdigest()[:24]
        with self._lock:
            server = self._ensure_started()
            # a group's verdicts may be two compiles apart (its batch, then one program alone)
            compile_limit = 0.0 if spec is None else float(spec["compile_timeout"])
            compiles = 2.0 if self.compile_batch == "auto" else 1.0
            server.longest = max(server.longest, 3.0 * (timeout + compiles * compile_limit) + 3.0
                                 + self.limits.grace_seconds)
            if not server.pending:
                server.last_heard = time.monotonic()  # silence counts only while work is pending
            payload = b""
            if key not in server.sent_tests:
                payload += encode({"op": "tests", "key": key, "stages": stages, "data": data_path,
                                   "prelude": prelude, "entry_point": entry_point, "label": label,
                                   **({"language": spec} if spec else {})})
                server.sent_tests.add(key)
            for source, future in zip(sources, futures):
                request_id = next(self._ids)
                server.pending[request_id] = future
                payload += encode({"op": "run", "id": request_id, "tests": key, "source": source, "timeout": timeout})
            try:
                assert server.proc.stdin is not None
                server.proc.stdin.write(payload)
                server.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the reader thread sees the server's death and fails what is pending
        return futures

    def close(self) -> None:
        """Stop the server: running samples are killed, temporary directories removed."""
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        proc = server.proc
        try:
            assert proc.stdin is not None
            proc.stdin.close()  # end of stdin is the server's signal to clean up and exit
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # its reader removes the server's directory once the server is gone: done on return
        if server.reader is not None and server.reader is not threading.current_thread():
            server.reader.join(timeout=30)

    def isolation(self, timeout: float = 60.0) -> dict[str, Any]:
        """The isolation in force, as the server reports it (starting the server if need be).

        Raises :class:`SandboxError` if the server could not start with the mode asked for."""
        with self._lock:
            server = self._ensure_started()
        try:
            return server.ready.result(timeout=timeout)
        except SandboxError:
            raise
        except Exception as e:
            raise SandboxError(f"the sandbox server did not start: {e}") from None

    @property
    def pid(self) -> int | None:
        server = self._server
        return server.proc.pid if server else None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _ensure_started(self) -> _Server:
        if self._server is not None and self._server.alive:
            return self._server
        server = _Server(self.workers, self.limits, self.isolation_mode, self.compile_batch)
        self._server = server
        self.starts += 1
        server.reader = threading.Thread(
            target=self._read_verdicts, args=(server,), name="codeeval-sandbox-reader", daemon=True
        )
        server.reader.start()
        log.debug("sandbox server started%s: pid %d, %d worker slot(s), isolation %s asked, directory %s",
                  f" again (start {self.starts}: the previous one died)" if self.starts > 1 else "",
                  server.proc.pid, self.workers, self.isolation_mode, server.base)
        return server

    def _wait_readable(self, server: _Server, fd: int) -> bool:
        """Wait for the server's next line; False when it has been silent too long with samples
        pending. Queued samples wait their turn, so silence is measured from the last verdict
        (or the first pending submission), against the longest one sample may take."""
        while True:
            with self._lock:
                pending = bool(server.pending)
                limit = server.last_heard + server.longest + 30.0
            wait = max(0.0, limit - time.monotonic()) if pending else 5.0
            try:
                ready, _, _ = select.select([fd], [], [], min(wait, 5.0))
            except InterruptedError:
                continue
            if ready:
                return True
            if pending and time.monotonic() >= limit:
                return False

    def _read_verdicts(self, server: _Server) -> None:
        assert server.proc.stdout is not None
        fd = server.proc.stdout.fileno()
        reader = LineReader(fd)
        hung = False
        while True:
            if not self._wait_readable(server, fd):
                # Samples are pending and the server has said nothing for longer than any of
                # them may take: it is hung (it never should be). Kill it: its samples resolve
                # as crashed below and the next submission starts a fresh server.
                hung = True
                log.debug("sandbox server pid %d silent past every pending sample's backstop: killed",
                          server.proc.pid)
                server.proc.kill()
            try:
                messages, ended = reader.read()
            except (OSError, ValueError):
                messages, ended = [], True
            server.last_heard = time.monotonic()
            for message in messages:
                if "ready" in message:
                    if message["ready"]:
                        log.debug("sandbox server pid %d ready: %s", server.proc.pid, message["isolation"])
                        server.ready.set_result(message["isolation"])
                    else:
                        log.debug("sandbox server pid %d refused to start: %s", server.proc.pid, message.get("error"))
                        server.ready.set_exception(SandboxError(str(message.get("error"))))
                    continue
                with self._lock:
                    future = server.pending.pop(int(message.pop("id")), None)
                if future is not None:
                    future.set_result(SampleResult.from_dict(message))
            if ended:
                break
        server.proc.wait()
        log.debug("sandbox server pid %d exited with %s", server.proc.pid, server.proc.returncode)
        if not server.ready.done():
            server.ready.set_exception(SandboxError(f"the sandbox server exited with {server.proc.returncode}"))
        try:  # a server killed by a signal could not remove its directory
            proc.force_rmtree(server.base)
        except OSError:
            pass  # something its dying samples still write: not worth failing the futures over
        with self._lock:
            server.alive = False  # the next submit starts a fresh server
            orphans = list(server.pending.values())
            server.pending.clear()
        detail = (f"the sandbox server stopped answering for over {server.longest:g} s and was killed" if hung
                  else f"the sandbox server stopped (exit status {server.proc.returncode})")
        for future in orphans:
            future.set_result(SampleResult(Outcome.CRASHED, detail))
