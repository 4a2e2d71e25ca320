"""The zygote: a clean process that forks every sample's supervisor, and so every sample.

The fork server holds what samples must never see: every problem's tests, expected outputs and
the programs of other samples. A sample forked from it would inherit all of that in its memory.
So, before the server receives anything, it forks this zygote, which from then on only ever
receives a job's plain parameters and file descriptors (never a program or a test): each
supervisor it forks, and each sample that supervisor forks, starts from this clean image, with
the standard library modules that programs commonly import already loaded (a fork shares them).

Jobs arrive on a SOCK_SEQPACKET socket: one JSON message with the descriptors attached
(``socket.send_fds``): [channel to the judge, the supervisor's report pipe].
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
from typing import Any, Callable

from pytest_codeeval.sandbox import proc

# Imported once here so that samples do not pay for them (HumanEval and MBPP programs' imports).
PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "string",
           "bisect", "fractions", "decimal", "statistics", "hashlib", "operator", "copy", "random",
           "datetime", "array", "cmath", "numbers", "dataclasses", "enum", "textwrap", "json")
MAX_MESSAGE = 64 * 1024


def preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def start(enter: Callable[[], dict[str, Any]],
          spawn: Callable[[dict[str, Any], list[int]], None]) -> tuple[int, socket.socket]:
    """Fork the zygote; -> (its pid, the server's end of its job socket). ``enter`` runs once in
    the zygote (the allow-list filesystem, say) and what it returns is the zygote's first
    message, with ``ok`` (:func:`receive` it); ``spawn(job, fds)`` runs in each forked
    supervisor and never returns."""
    return proc.fork_peer(lambda zygote_end: _serve(zygote_end, enter, spawn))


def send(sock: socket.socket, job: dict[str, Any], fds: list[int]) -> None:
    socket.send_fds(sock, [json.dumps(job).encode()], fds)


def receive(sock: socket.socket, timeout: float) -> dict[str, Any]:
    """The zygote's first message (whether it is ready), waiting at most ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(MAX_MESSAGE)
    except OSError as e:
        return {"ok": False, "error": f"no word from the zygote ({e})"}
    finally:
        sock.settimeout(None)
    try:
        return dict(json.loads(data)) if data else {"ok": False, "error": "the zygote exited"}
    except ValueError:
        return {"ok": False, "error": "a garbled word from the zygote"}


def _reap(*_: Any) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _serve(sock: socket.socket, enter: Callable[[], dict[str, Any]],
           spawn: Callable[[dict[str, Any], list[int]], None]) -> None:
    proc.die_with_parent()
    proc.set_dumpable(False)
    # supervisors report through their own pipes; reaped as they exit (not ignored: their CPU
    # time then counts in ours, and in the run's)
    signal.signal(signal.SIGCHLD, _reap)
    try:
        ready = {"ok": True, **enter()}
    except BaseException as e:  # noqa: BLE001 - said to the server, which refuses to start
        sock.send(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}).encode())
        return
    preload()
    gc.collect()
    gc.freeze()  # what exists now is shared by every fork, never touched by their collectors
    sock.send(json.dumps(ready).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 8)
        except InterruptedError:
            continue
        if not data:
            return  # the server closed its end: it is shutting down
        try:
            job = json.loads(data)
        except ValueError:
            job = None
        pid = os.fork() if job is not None else -1
        if pid == 0:
            code = 1
            try:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the supervisor waits for its sample
                spawn(job, fds)
                code = 0
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
