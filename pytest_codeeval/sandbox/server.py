"""The fork server: a bare interpreter that judges samples, each in two processes.

Started by :class:`~pytest_codeeval.sandbox.client.Sandbox` as ``python -I`` with only the
standard library and this package's sandbox modules imported, so a fork costs about a
millisecond rather than the ~20 ms it costs from a process holding torch. For each Python
sample it forks a judge (:mod:`judge`: trusted, it inherits the problem's compiled tests and
data) and asks the zygote (:mod:`zygote`: clean, it never sees a test or a program) to fork the
sample's supervisor, which forks the sample; judge and sample talk over a socket pair made here.
The verdict combines the judge's conclusion with the supervisor's account of how the sample
ended. Requests arrive on stdin and verdicts leave on stdout, one JSON object per line:

    {"op": "tests", "key": K, "stages": [[NAME, SOURCE], ...], "data": PATH|null,
     "prelude": SOURCE, "entry_point": NAME, "label": TASK_ID}
                                                    compile a problem's tests once
    {"op": "tests", "key": K, "stages": [["tests", DRIVER]], "language": {"name", "tools", ...}}
                                                    a test driver of another language, kept as text
    {"op": "run", "id": I, "tests": K, "source": P, "timeout": T}
    -> {"id": I, "outcome": ..., "detail": ..., "stdout": ..., ...}

Another language's samples of one problem queued together (the plugin submits a problem's
samples back to back) start as one group (up to GROUP_MAX) on one slot: their supervisor
(:func:`compiled.supervise_group`) compiles each distinct program once and runs each sample
alone, answering each as soon as it is judged. ``compile_batch: "off"`` in the config judges
each sample on its own.

End of stdin (the plugin closed it, or died) shuts the server down: every running sample is
killed and the server's temporary directory removed.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_codeeval.sandbox import (cgroups, compiled, fsroot, isolation, judge, languages, proc, supervisor, uids,
                                     zygote)
from pytest_codeeval.sandbox.protocol import LineReader, encode

GROUP_MAX = 16  # samples of another language judged by one supervisor

@dataclass(frozen=True)
class _Spec:
    """Another language's problem: its test driver, compiled with each sample by compiled.py."""

    sources: list[tuple[str, str]]
    language: dict[str, Any]


@dataclass
class _Job:
    """A sample in flight. Python: a judge (our child) and the slot's supervisor, whose final
    word is ``supervised``; another language: a group of samples of one problem (``group``,
    ``request`` its first), one supervisor of ours (``fds``) answering each by id."""

    request: dict[str, Any]
    fds: list[int]  # our pipes still open: the judge's report, or a compiled supervisor's
    workdir: str
    deadline: float  # the server's backstop, beyond the supervisor's own deadline
    slot: int
    supervisor_pid: int | None = None  # compiled languages: our child
    python: bool = False  # judged by the slot's judge, run by the slot's supervisor
    sample_pid: int | None = None
    bufs: dict[int, bytes] = field(default_factory=dict)
    group: list[dict[str, Any]] = field(default_factory=list)  # (compiled) its requests, in order
    answered: set[int] = field(default_factory=set)  # (compiled) the ids already replied to
    dirs: list[str] = field(default_factory=list)  # (compiled) what its supervisor makes and removes
    supervised: dict[str, Any] | None = None  # the slot supervisor's account (Python)
    judged: dict[str, Any] | None = None  # the slot judge's verdict (Python)


@dataclass
class _Slot:
    """A worker slot's long-lived supervisor (forked by the zygote) or judge (forked by us),
    and its socket."""

    sock: socket.socket
    pid: int
    job: _Job | None = None
    sent: set[str] = field(default_factory=set)  # (judges) the problems whose tests it holds


class ForkServer:
    def __init__(self, workers: int, limits: dict[str, Any], base: str, level: dict[str, Any],
                 uid_block: uids.UidBlock | None = None, strict: bool = False, compile_batch: bool = True) -> None:
        self.workers = max(1, workers)
        self.compile_batch = compile_batch  # another language's samples of a problem judged as a group
        # one unprivileged uid per worker slot (root servers only), from a block no other server
        # on the host holds: samples running at the same time, here or in another run, cannot
        # signal each other, write each other's files or share RLIMIT_NPROC
        self.uid_block = uid_block if level.get("uid_per_sample") else None
        self.free_slots = list(range(self.workers))
        self.bwrap = level["bwrap"] if level["mode"] == "bwrap" else None
        self.level = level
        self.limits = limits
        self.base = base  # made by the plugin, which removes it too if this process is killed
        # key -> another language's test driver, or a Python problem's tests (compiled by judges)
        self.tests: dict[str, _Spec | dict[str, Any]] = {}
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.jobs: dict[int, _Job] = {}  # by each of their pipe fds
        self.sel = selectors.DefaultSelector()
        self.namespaces = level["mode"] == "namespaces"
        # a cgroup per worker slot, where the kernel lets us make them
        self.cgroups = cgroups.probe() if level["mode"] in ("namespaces", "fork") else None
        groups: dict[int, Any] = {}
        if self.cgroups is not None:
            try:
                pids = int(limits["processes"])
                groups = {slot: self.cgroups.make(f"slot{slot}", pids, int(limits["memory_bytes"]))
                          for slot in range(self.workers)}
            except OSError as e:
                level["cgroups"] = f"not in force ({e})"
                self.cgroups.close()
                self.cgroups, groups = None, {}
        if self.cgroups is not None:
            level["cgroups"] = self.cgroups.describe()
        elif "cgroups" not in level:
            level["cgroups"] = f"not in force ({cgroups.probe_reason() or 'not used in this mode'}): " \
                               "CPU time and leftovers follow the process tree"
        scratch = None
        if self.namespaces:
            scratch = (int(limits["scratch_bytes"]), int(limits["scratch_inodes"]))
        self.context = supervisor.Context(groups, scratch, self.namespaces, bool(level.get("read_search")))
        # Forked now, while this process holds nothing a sample must not see.
        self.allow_list = self.namespaces
        self.zygote_pid, self.zygote = zygote.start(self._enter_zygote, self._spawn)
        ready = zygote.receive(self.zygote, timeout=30.0)
        if not ready.get("ok") and self.namespaces and not strict:
            # ``auto``: where the kernel refuses the allow-list root (a restricted user
            # namespace, say), the host's root stays, read-only; the summary says so
            self._retire_zygote()
            self.allow_list = False
            level["filesystem"] = f"read-only host root (the allow-list root was refused: {ready.get('error')})"
            self.zygote_pid, self.zygote = zygote.start(self._enter_zygote, self._spawn)
            ready = zygote.receive(self.zygote, timeout=30.0)
        if not ready.get("ok"):
            raise isolation.IsolationError(0, f"the zygote could not start: {ready.get('error')}")
        if ready.get("root"):
            level["filesystem"] = ready["root"]
        self.slots: dict[int, _Slot] = {}
        self.judges: dict[int, _Slot] = {}
        for slot in range(self.workers):
            self._start_slot(slot)
        for slot in range(self.workers):
            self._start_judge(slot)

    def _start_judge(self, slot: int) -> None:
        """Fork the slot's judge: trusted, it never runs a sample's code (see :mod:`judge`)."""
        def run(theirs: socket.socket) -> None:
            self._leave_server_fds()
            judge.serve(theirs)

        pid, ours = proc.fork_peer(run)
        self.judges[slot] = _Slot(ours, pid)
        self.sel.register(ours.fileno(), selectors.EVENT_READ, ("judge", slot))

    def _start_slot(self, slot: int) -> None:
        """Have the zygote fork the slot's supervisor, and wait for its word."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            zygote.send(self.zygote, {"op": "slot", "slot": slot, "uid": self._uid(slot)}, [theirs.fileno()])
        finally:
            theirs.close()
        ready = zygote.receive(ours, timeout=30.0)
        if "ready" not in ready:
            raise isolation.IsolationError(0, f"the supervisor of slot {slot} did not start: {ready.get('error')}")
        self.slots[slot] = _Slot(ours, int(ready["ready"]))
        self.sel.register(ours.fileno(), selectors.EVENT_READ, ("supervisor", slot))

    def _retire_zygote(self) -> None:
        self.zygote.close()
        try:
            os.kill(self.zygote_pid, signal.SIGKILL)
            os.waitpid(self.zygote_pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def _uid(self, slot: int) -> int | None:
        return self.uid_block.uid(slot) if self.uid_block is not None else None

    def _enter_zygote(self) -> dict[str, Any]:
        """In the zygote, once: let go of the plugin's pipes, and (``namespaces`` mode) enter
        the allow-list root (each slot's supervisor then mounts its own scratch as /tmp)."""
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # never hold the plugin's pipes: their EOF must mean our death
        os.dup2(devnull, 1)
        os.close(devnull)
        if not self.allow_list:
            return {}
        read_only, hidden = fsroot.default_read_only(fsroot.sample_packages())
        return {"root": fsroot.enter_root(read_only, hidden, [])}

    def _spawn(self, job: dict[str, Any], fds: list[int]) -> None:
        supervisor.serve_slot(int(job["slot"]), socket.socket(fileno=fds[0]), self.context, job.get("uid"))


    # -- main loop ----------------------------------------------------------------------------
    def serve(self) -> None:
        proc.become_subreaper()  # orphans of killed supervisors come here to be killed
        proc.set_dumpable(False)
        # Objects that exist now are never collected: a child's garbage collector then leaves
        # the pages it shares with this process untouched, and forks stay cheap.
        gc.freeze()
        reader = LineReader(0)
        self.sel.register(0, selectors.EVENT_READ, None)
        try:
            while True:
                while self.queue and len(self._running()) < self.workers:
                    self._start(self.queue.popleft())
                for key, _ in self.sel.select(self._next_wakeup()):
                    if key.data is None:
                        messages, ended = reader.read()
                        for m in messages:
                            self._handle(m)
                        if ended:
                            return
                    elif isinstance(key.data, tuple):
                        (self._hear_judge if key.data[0] == "judge" else self._hear_slot)(key.data[1])
                    else:
                        self._pump(key.data, key.fd)
                self._enforce_backstops()
        finally:
            self.shutdown()

    def _running(self) -> list[_Job]:
        jobs = {id(j): j for j in self.jobs.values()}
        jobs.update((id(s.job), s.job) for s in self.slots.values() if s.job is not None)
        jobs.update((id(s.job), s.job) for s in self.judges.values() if s.job is not None)
        return list(jobs.values())

    def _next_wakeup(self) -> float | None:
        jobs = self._running()
        if not jobs:
            return None
        return max(0.0, min(j.deadline for j in jobs) - time.monotonic())

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "tests" and message.get("language"):
            sources = [(str(name), str(src)) for name, src in message["stages"]]
            self.tests[message["key"]] = _Spec(sources, dict(message["language"]))
        elif op == "tests":  # compiled by each slot's judge, on its first sample of the problem
            self.tests[message["key"]] = message
        elif op == "run":
            self.queue.append(message)

    # -- one job ------------------------------------------------------------------------------
    def _start(self, request: dict[str, Any]) -> None:
        spec = self.tests.get(request["tests"])
        if spec is None:
            detail = "unknown checks (internal error: tests were not sent)"
            self._reply(request, {"outcome": "crashed", "detail": detail, "stages": []})
            return
        if isinstance(spec, _Spec) and self.bwrap:
            self._reply(request, {"outcome": "crashed", "stages": [], "detail": "bwrap isolation runs Python "
                                  "samples only; use --codeeval-isolation=namespaces or fork for other languages"})
            return
        group = [request, *self._take_group(request, spec)] if isinstance(spec, _Spec) and self.compile_batch \
            else [request]
        slot = self.free_slots.pop()
        sample_uid = self._uid(slot)
        timeout = float(request["timeout"])
        if isinstance(spec, _Spec):  # another language
            job = self._start_compiled(group, spec, slot, sample_uid, timeout)
        else:
            workdir = "/tmp" if self.namespaces else os.path.join(self.base, f"s{request['id']}")
            job = self._start_python(request, workdir, slot, sample_uid, timeout)
        for fd in job.fds:
            os.set_blocking(fd, False)
            self.jobs[fd] = job
            self.sel.register(fd, selectors.EVENT_READ, job)

    def _take_group(self, first: dict[str, Any], spec: _Spec) -> list[dict[str, Any]]:
        """The queued requests to judge with ``first`` (another language's): those of the same
        problem and time limit, up to GROUP_MAX in all. Where fewer problems wait than slots
        are free (a run's last problems), a problem's distinct programs are shared among the
        free slots instead, identical ones kept together (they compile once). Where the
        language has no batch compiler, only ``first``'s identical copies: a group runs on one
        slot, so distinct programs of a problem grouped there would wait in line while another
        slot idles, for nothing gained."""
        same = [r for r in self.queue if r["tests"] == first["tests"] and r["timeout"] == first["timeout"]]
        language = spec.language or {}
        runner = languages.RUNNERS.get(str(language.get("name")))
        if runner is None or not runner.batches(dict(language.get("tools") or {})):
            same = [r for r in same if r["source"] == first["source"]]
        if not same:
            return []
        waiting = len({r["tests"] for r in self.queue} | {first["tests"]})
        share = max(1, len(self.free_slots) // waiting)  # the slots this problem may have now
        if share > 1:
            programs = list(dict.fromkeys(r["source"] for r in [first, *same]))
            kept = set(programs[: -(-len(programs) // share)])
            same = [r for r in same if r["source"] in kept]
        taken = same[: GROUP_MAX - 1]
        chosen = {id(r) for r in taken}
        self.queue = collections.deque(r for r in self.queue if id(r) not in chosen)
        return taken

    def _start_compiled(self, group: list[dict[str, Any]], spec: _Spec, slot: int, sample_uid: int | None,
                        timeout: float) -> _Job:
        """Fork the supervisor of ``group`` (samples of one problem): it makes and removes the
        directories (that work then runs on every core, not serially in this process)."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the supervisor
            code = 0
            try:
                os.close(r)
                self._leave_server_fds()
                compiled.supervise_group(spec.language or {}, spec.sources[0][1],
                                         [(int(q["id"]), str(q["source"])) for q in group], self.base, timeout,
                                         self.limits, w, sample_uid,
                                         compiled.Isolation(self.context.scratch, self.context.groups.get(slot)),
                                         batch=self.compile_batch)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        programs = len({q["source"] for q in group})
        deadline = time.monotonic() + compiled.group_backstop(spec.language or {}, timeout, len(group), programs) \
            + float(self.limits["grace_seconds"])
        dirs = [os.path.join(self.base, f"s{q['id']}") for q in group] + [os.path.join(self.base, f"g{group[0]['id']}")]
        return _Job(group[0], [r], dirs[0], deadline, slot, supervisor_pid=pid, group=list(group), dirs=dirs)

    def _start_python(self, request: dict[str, Any], workdir: str, slot: int, sample_uid: int | None,
                      timeout: float) -> _Job:
        """Hand the sample to the slot's judge and supervisor: the judge gets one end of a new
        channel and the read ends of the sample's output pipes, the supervisor the rest."""
        judge_end, sample_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        backstop = supervisor.wall_backstop(timeout)
        judge_slot, supervisor_slot = self.judges[slot], self.slots[slot]
        run = {"op": "run", "id": request["id"], "tests": request["tests"], "source": request["source"],
               "deadline": backstop + 2.0, "output": int(self.limits["output_bytes"])}
        job = {"id": request["id"], "workdir": workdir, "uid": sample_uid, "timeout": timeout,
               "limits": self.limits, "bwrap": self.bwrap}
        try:
            if request["tests"] not in judge_slot.sent:
                self._tell_judge(judge_slot.sock, self.tests[request["tests"]], [])
                judge_slot.sent.add(request["tests"])
            self._tell_judge(judge_slot.sock, run, [judge_end.fileno(), out_r, err_r])
        except OSError:
            pass  # the judge is gone: its socket's end is heard next, and says so
        try:
            socket.send_fds(supervisor_slot.sock, [json.dumps(job).encode()], [sample_end.fileno(), out_w, err_w])
        except OSError:
            pass  # likewise
        for end in (judge_end, sample_end):
            end.close()
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        deadline = time.monotonic() + backstop + float(self.limits["grace_seconds"])
        running = _Job(request, [], workdir, deadline, slot, python=True)
        judge_slot.job = supervisor_slot.job = running
        return running

    def _tell_judge(self, sock: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        """One message to a judge: a datagram, or, when too large for one (a long program, a
        declared benchmark's tests with their expected values), a file only root can read, in
        the server's directory, that the judge reads and removes."""
        data = json.dumps(message).encode()
        if len(data) > judge.MESSAGE_BYTES:
            fd, path = tempfile.mkstemp(prefix=".message-", dir=self.base)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            data = json.dumps({"op": "file", "path": path}).encode()
        socket.send_fds(sock, [data], fds)

    def _leave_server_fds(self) -> None:
        """In a child of the server: hold neither the plugin's pipes (their EOF must mean the
        server's death) nor the zygote's and supervisors' sockets."""
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        self.zygote.close()
        for s in [*self.slots.values(), *self.judges.values()]:
            s.sock.close()

    def _pump(self, job: _Job, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return
        if chunk:
            buf = job.bufs.get(fd, b"") + chunk
            *lines, job.bufs[fd] = buf.split(b"\n")
            for line in lines:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "pid" in message:  # a compiled step now running
                    job.sample_pid = int(message["pid"])
                else:
                    self._answer(job, message)
            return
        self.sel.unregister(fd)
        os.close(fd)
        del self.jobs[fd]
        job.fds.remove(fd)
        self._maybe_finish(job)

    def _answer(self, job: _Job, message: dict[str, Any]) -> None:
        """A compiled group's verdict of one of its samples: replied to at once."""
        ids = {int(q["id"]): q for q in job.group}
        request_id = message.pop("id", None)
        if isinstance(request_id, int) and request_id in ids and request_id not in job.answered:
            job.answered.add(request_id)
            self._reply(ids[request_id], message)

    def _hear_slot(self, slot: int) -> None:
        """A word from a slot's supervisor: the running sample's pid, or how it ended; nothing
        (its death: its sample is reported as crashed, and the slot gets a new supervisor)."""
        s = self.slots[slot]
        message = self._receive(s, 1 << 16)
        if message is None:
            job, s.job = s.job, None
            self._replace_slot(slot)
            if job is not None:
                if job.sample_pid is not None:
                    proc.kill_group(job.sample_pid)
                job.supervised = {"outcome": "crashed", "detail": "the sample's supervisor was killed "
                                  "before it could report (did the sample kill its parent?)"}
                self._maybe_finish(job)
            return
        job = s.job
        if job is None or message.get("id") != job.request["id"]:
            return
        if set(message) == {"id", "pid"}:
            job.sample_pid = int(message["pid"])
        else:
            job.supervised = message
            self._maybe_finish(job)

    def _hear_judge(self, slot: int) -> None:
        """The slot's judge's verdict; or its end (a bug: the sample is reported as crashed,
        and the slot gets a new judge)."""
        s = self.judges[slot]
        message = self._receive(s, 1 << 24)
        if message is None:
            job, s.job = s.job, None
            self._replace_judge(slot)
            if job is not None:
                job.judged = {"outcome": "crashed", "detail": "the judge stopped without a verdict (internal error)"}
                self._maybe_finish(job)
            return
        job = s.job
        if job is not None and message.get("id") == job.request["id"]:
            s.job = None
            job.judged = message
            self._maybe_finish(job)

    def _replace_judge(self, slot: int) -> None:
        """Kill the slot's judge (if it only closed its socket) and start another."""
        self._retire(self.judges[slot], reap=True)
        self._start_judge(slot)

    def _replace_slot(self, slot: int) -> None:
        """Kill the slot's supervisor (if it only closed its socket) and start another."""
        self._retire(self.slots[slot], reap=False)  # the zygote's child: the zygote reaps it
        self._start_slot(slot)

    def _retire(self, s: _Slot, reap: bool) -> None:
        self.sel.unregister(s.sock.fileno())
        s.sock.close()
        try:
            os.kill(s.pid, signal.SIGKILL)
            if reap:
                os.waitpid(s.pid, 0)
        except (ProcessLookupError, PermissionError, ChildProcessError):
            pass

    @staticmethod
    def _receive(s: _Slot, size: int) -> dict[str, Any] | None:
        """The next message on a slot's socket; None at its end (the process is gone)."""
        try:
            data = s.sock.recv(size)
        except OSError:
            data = b""
        return json.loads(data) if data else None

    def _maybe_finish(self, job: _Job) -> None:
        if not job.fds and (not job.python or (job.supervised is not None and job.judged is not None)):
            self._finish(job)

    def _finish(self, job: _Job, verdict: dict[str, Any] | None = None) -> None:
        for fd in job.fds:
            self.sel.unregister(fd)
            os.close(fd)
            del self.jobs[fd]
        job.fds.clear()
        for owner in (self.slots, self.judges):
            if job.python and owner[job.slot].job is job:
                owner[job.slot].job = None
        if not job.python:
            self._finish_compiled(job, verdict)
            return
        supervised = job.supervised
        if not (supervised and supervised.get("scratch_lost")):
            self.free_slots.append(job.slot)  # (a slot whose scratch could not be renewed is retired)
        abnormal = verdict is not None or supervised is None
        if verdict is None:
            verdict = self._combine(job, supervised)
        if job.sample_pid is not None and abnormal:
            proc.kill_group(job.sample_pid)
        if job.supervisor_pid is not None:
            _end_child(job.supervisor_pid)
        self._reply(job.request, verdict)

    def _finish_compiled(self, job: _Job, verdict: dict[str, Any] | None) -> None:
        """A compiled group's end: its supervisor exited (every sample answered, normally) or
        was killed at the backstop (``verdict``); each sample still unanswered gets ``verdict``,
        or is reported crashed with its supervisor."""
        self.free_slots.append(job.slot)
        left = [q for q in job.group if int(q["id"]) not in job.answered]
        if left and verdict is None:
            verdict = self._combine(job, None)
        if job.sample_pid is not None and left:
            proc.kill_group(job.sample_pid)
        if job.supervisor_pid is not None:
            _end_child(job.supervisor_pid)
        if left:  # whatever escaped a dead supervisor was reparented here
            spare = frozenset(j.supervisor_pid for j in self._running() if j.supervisor_pid and j is not job)
            spare |= {s.pid for s in self.judges.values()}
            proc.kill_and_reap_children(spare=spare | {self.zygote_pid})
            for path in job.dirs:  # what its supervisor could not remove (a scratch mount too)
                if os.path.lexists(path):
                    fsroot.drop_scratch(path)
                if os.path.lexists(path):
                    proc.force_rmtree(path)
        for request in left:
            job.answered.add(int(request["id"]))
            self._reply(request, dict(verdict or {}))

    @staticmethod
    def _combine(job: _Job, supervised: dict[str, Any] | None) -> dict[str, Any]:
        """The judge's conclusion where it reached one; else how the sample ended, as its
        supervisor saw it. The sample's output comes from the judge, which read it."""
        if supervised is None:
            supervised = {"outcome": "crashed", "detail": "the sample's supervisor was killed before it could "
                          "report (did the sample kill its parent?)"}
        if not job.python:  # compiled languages: the supervisor's verdict is the verdict
            return supervised
        judged = job.judged
        verdict: dict[str, Any] = {"duration": supervised.get("duration", 0.0)}
        if judged is not None:
            verdict.update(stdout=judged.get("stdout", ""), stderr=judged.get("stderr", ""))
        if judged is not None and judged.get("outcome") in ("passed", "failed", "syntax_error", "oom", "crashed"):
            verdict.update(outcome=judged["outcome"], detail=judged.get("detail", ""),
                           traceback=judged.get("traceback", ""))
        else:
            verdict.update(outcome=supervised.get("outcome", "crashed"), detail=supervised.get("detail", ""))
            if judged is None and verdict["outcome"] not in ("timeout", "oom"):
                verdict.update(outcome="crashed", detail="the judge stopped without a verdict (internal error)")
        verdict["stages"] = list(judged.get("stages", [])) if judged else []
        return verdict

    def _enforce_backstops(self) -> None:
        now = time.monotonic()
        for job in [j for j in self._running() if j.deadline <= now]:
            if job.supervisor_pid is not None:
                try:
                    os.kill(job.supervisor_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if job.python:  # the slot's supervisor or judge stopped answering: replace what did
                if job.supervised is None:
                    self.slots[job.slot].job = None
                    self._replace_slot(job.slot)
                if job.judged is None:
                    self.judges[job.slot].job = None
                    self._replace_judge(job.slot)
                if job.sample_pid is not None:
                    proc.kill_group(job.sample_pid)
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
        for job in self._running():
            if job.sample_pid is not None:
                proc.kill_group(job.sample_pid)
        for s in [*self.slots.values(), *self.judges.values()]:
            s.sock.close()  # their end of stream: each (a supervisor: with its sample) exits
        self.zygote.close()  # the zygote's end of stream: it exits
        proc.kill_and_reap_children()
        if self.cgroups is not None:
            self.cgroups.close()
        # the plugin removes the directory itself: inside a mount namespace its parent is
        # read-only here, so only what it holds can go
        for name in os.listdir(self.base):
            proc.force_rmtree(os.path.join(self.base, name))


def _end_child(pid: int) -> None:
    """Reap our child ``pid``, killing it first if it has not exited (a supervisor at its
    backstop, or one that answered and is still tidying up)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def main() -> None:
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the plugin decides when we stop
    mode = str(config.get("isolation", "auto"))
    block = None
    if os.geteuid() == 0 and mode != "bwrap":  # before "/" turns read-only: the lock file is made
        try:
            block = uids.UidBlock.allocate(int(config["workers"]))
        except OSError as e:
            os.write(1, encode({"ready": False, "error": f"no block of sample uids: {e}"}))
            sys.exit(2)
    try:
        level = isolation.enter(mode, str(config["base"]))
        if block is not None:
            level["uids"] = f"{block.uid(0)}-{block.uid(int(config['workers']) - 1)} (a block no other server holds)"
        server = ForkServer(int(config["workers"]), config["limits"], str(config["base"]), level, block,
                            strict=mode == "namespaces", compile_batch=config.get("compile_batch", "auto") != "off")
    except isolation.IsolationError as e:
        os.write(1, encode({"ready": False, "error": f"isolation refused by the kernel: {e}"}))
        sys.exit(2)
    if level["mode"] == "fork":  # as PID 1 of its namespaces the server ignores SIGTERM instead
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.write(1, encode({"ready": True, "isolation": level}))
    server.serve()


if __name__ == "__main__":
    main()
