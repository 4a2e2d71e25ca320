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
import socket
import sys
import time
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from pytest_codeeval.sandbox import cgroups, compiled, fsroot, harness, isolation, judge, proc, supervisor, uids, zygote
from pytest_codeeval.sandbox.protocol import LineReader, encode

DATA_CACHE = 4  # problems whose data (pickled expected outputs) stay loaded in this process


@dataclass(frozen=True)
class _Spec:
    stages: list[tuple[str, CodeType]]
    data: str | None  # a pickle file of data for the checks
    sources: list[tuple[str, str]]
    language: dict[str, Any] | None = None  # not Python: compiled and run by compiled.py
    prelude: dict[str, Any] = field(default_factory=dict)  # the tests' trusted namespace
    entry_point: str | None = None


@dataclass
class _Job:
    """One sample in flight. Python: a judge (our child) and the slot's supervisor, whose final
    word is ``supervised``; another language: one supervisor of ours (``fds``)."""

    request: dict[str, Any]
    fds: list[int]  # our pipes still open: the judge's report, or a compiled supervisor's
    workdir: str
    deadline: float  # the server's backstop, beyond the supervisor's own deadline
    slot: int
    supervisor_pid: int | None = None  # compiled languages: our child
    judge_pid: int | None = None
    sample_pid: int | None = None
    bufs: dict[int, bytes] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)  # from our pipe (judge or supervisor)
    supervised: dict[str, Any] | None = None  # the slot supervisor's account (Python)


@dataclass
class _Slot:
    """A worker slot's long-lived supervisor (forked by the zygote) and its socket."""

    sock: socket.socket
    pid: int
    job: _Job | None = None


class ForkServer:
    def __init__(self, workers: int, limits: dict[str, Any], base: str, level: dict[str, Any],
                 uid_block: uids.UidBlock | None = None) -> None:
        self.workers = max(1, workers)
        # one unprivileged uid per worker slot (root servers only), from a block no other server
        # on the host holds: samples running at the same time, here or in another run, cannot
        # signal each other, write each other's files or share RLIMIT_NPROC
        self.uid_block = uid_block if level.get("uid_per_sample") else None
        self.free_slots = list(range(self.workers))
        self.bwrap = level["bwrap"] if level["mode"] == "bwrap" else None
        self.level = level
        self.limits = limits
        self.base = base  # made by the plugin, which removes it too if this process is killed
        self.tests: dict[str, _Spec | str] = {}  # key -> compiled checks, or why they are unusable
        self.data: collections.OrderedDict[str, Any] = collections.OrderedDict()  # path -> data, LRU
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
            for slot in range(self.workers):
                os.mkdir(self._scratch(slot), 0o700)
        self.context = supervisor.Context(groups, scratch, self.namespaces, bool(level.get("read_search")))
        # Forked now, while this process holds nothing a sample must not see.
        self.zygote_pid, self.zygote = zygote.start(self._enter_zygote, self._spawn)
        ready = zygote.receive(self.zygote, timeout=30.0)
        if not ready.get("ok"):
            raise isolation.IsolationError(0, f"the zygote could not start: {ready.get('error')}")
        if ready.get("root"):
            level["filesystem"] = ready["root"]
        self.slots: dict[int, _Slot] = {}
        for slot in range(self.workers):
            self._start_slot(slot)

    def _start_slot(self, slot: int) -> None:
        """Have the zygote fork the slot's supervisor, and wait for its word."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            zygote.send(self.zygote, {"op": "slot", "slot": slot}, [theirs.fileno()])
        finally:
            theirs.close()
        ready = zygote.receive(ours, timeout=30.0)
        if "ready" not in ready:
            raise isolation.IsolationError(0, f"the supervisor of slot {slot} did not start: {ready.get('error')}")
        self.slots[slot] = _Slot(ours, int(ready["ready"]))
        self.sel.register(ours.fileno(), selectors.EVENT_READ, slot)

    def _scratch(self, slot: int) -> str:
        return os.path.join(self.base, f"slot{slot}")

    def _uid(self, slot: int) -> int | None:
        return self.uid_block.uid(slot) if self.uid_block is not None else None

    def _enter_zygote(self) -> dict[str, Any]:
        """In the zygote, once: let go of the plugin's pipes, and (``namespaces`` mode) enter
        the allow-list root, with a fresh scratch tmpfs per slot in it."""
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # never hold the plugin's pipes: their EOF must mean our death
        os.dup2(devnull, 1)
        os.close(devnull)
        if not self.namespaces:
            return {}
        read_only, hidden = fsroot.default_read_only()
        root = fsroot.enter_root(read_only, hidden, [self.base])
        size, inodes = self.context.scratch or (0, 0)
        for slot in range(self.workers):
            uid = self._uid(slot)
            fsroot.make_scratch(self._scratch(slot), size, inodes, uid if uid is not None else 0)
        return {"root": root}

    def _spawn(self, job: dict[str, Any], fds: list[int]) -> None:
        supervisor.serve_slot(int(job["slot"]), socket.socket(fileno=fds[0]), self.context)


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
                    elif isinstance(key.data, int):
                        self._hear_slot(key.data)
                    else:
                        self._pump(key.data, key.fd)
                self._enforce_backstops()
        finally:
            self.shutdown()

    def _running(self) -> list[_Job]:
        jobs = {id(j): j for j in self.jobs.values()}
        jobs.update((id(s.job), s.job) for s in self.slots.values() if s.job is not None)
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
            self.tests[message["key"]] = _Spec([], None, sources, dict(message["language"]))
        elif op == "tests":
            self.tests[message["key"]] = self._compile(message)
        elif op == "run":
            self.queue.append(message)

    @staticmethod
    def _compile(message: dict[str, Any]) -> _Spec | str:
        """A problem's tests compiled once, each under a name of its own (so that a failure
        report quotes this problem's line), and its prelude run once (trusted: the dataset's)."""
        label = str(message.get("label") or "")
        many = len(message["stages"]) > 1
        base = f"<tests:{label}" if label else "<tests"
        try:
            stages = [(str(name), harness.compile_program(src, f"{base}:{name}>" if many else f"{base}>"))
                      for name, src in message["stages"]]
        except BaseException as e:  # a broken benchmark: every sample of it errors
            return f"the checks do not compile: {type(e).__name__}: {e}"
        prelude: dict[str, Any] = {"__name__": "__main__"}
        source = str(message.get("prelude") or "")
        if source:
            try:
                exec(harness.compile_program(source, f"<prelude:{label}>" if label else "<prelude>"), prelude)
            except BaseException:  # noqa: BLE001 - a prelude that does not run gives no helpers
                prelude = {"__name__": "__main__"}
        sources = [(str(name), str(src)) for name, src in message["stages"]]
        entry = message.get("entry_point")
        return _Spec(stages, message.get("data"), sources, None, prelude, str(entry) if entry else None)

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
        data = None
        if spec.language is None:
            try:
                data = self._load_data(spec.data)
            except BaseException as e:
                detail = f"the checks' data cannot be loaded: {type(e).__name__}: {e}"
                self._reply(request, {"outcome": "crashed", "detail": detail, "stages": []})
                return
        # the supervisor makes and removes the directory: that work then runs on every core,
        # not serially in this process
        slot = self.free_slots.pop()
        sample_uid = self._uid(slot)
        workdir = (self._scratch(slot) if self.namespaces and spec.language is None
                   else os.path.join(self.base, f"s{request['id']}"))
        timeout = float(request["timeout"])
        if spec.language is not None:
            job = self._start_compiled(request, spec, workdir, slot, sample_uid, timeout)
        else:
            job = self._start_python(request, spec, data, workdir, slot, sample_uid, timeout)
        for fd in job.fds:
            os.set_blocking(fd, False)
            self.jobs[fd] = job
            self.sel.register(fd, selectors.EVENT_READ, job)

    def _start_compiled(self, request: dict[str, Any], spec: _Spec, workdir: str, slot: int,
                        sample_uid: int | None, timeout: float) -> _Job:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the supervisor
            code = 0
            try:
                os.close(r)
                self._leave_server_fds()
                compiled.supervise(spec.language or {}, request["source"], spec.sources[0][1], workdir, timeout,
                                   self.limits, w, sample_uid)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        deadline = time.monotonic() + compiled.backstop(spec.language or {}, timeout) + float(self.limits["grace_seconds"])
        return _Job(request, [r], workdir, deadline, slot, supervisor_pid=pid, roles={r: "supervisor"})

    def _start_python(self, request: dict[str, Any], spec: _Spec, data: Any, workdir: str, slot: int,
                      sample_uid: int | None, timeout: float) -> _Job:
        """Fork the judge, and hand the sample to the slot's supervisor: the judge gets one end of
        the channel and the read ends of the sample's output pipes, the sample the rest."""
        judge_end, sample_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        judge_r, judge_w = os.pipe()
        backstop = supervisor.wall_backstop(timeout)
        pid = os.fork()
        if pid == 0:  # the judge
            code = 0
            try:
                for fd in (judge_r, out_w, err_w):
                    os.close(fd)
                sample_end.close()  # else the sample's death would not close the channel
                self._leave_server_fds()
                proc.set_dumpable(False)
                judge.main(judge_end.fileno(), judge_w, str(request["source"]), spec.stages, spec.prelude,
                           spec.entry_point, data, time.monotonic() + backstop + 2.0, spec.sources,
                           (out_r, err_r), int(self.limits["output_bytes"]))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        judge_end.close()
        for fd in (judge_w, out_r, err_r):
            os.close(fd)
        job = {"id": request["id"], "workdir": workdir, "uid": sample_uid, "timeout": timeout,
               "limits": self.limits, "bwrap": self.bwrap}
        try:
            socket.send_fds(self.slots[slot].sock, [json.dumps(job).encode()], [sample_end.fileno(), out_w, err_w])
        except OSError:
            pass  # the supervisor is gone: its socket's end is heard next, and says so
        sample_end.close()
        os.close(out_w)
        os.close(err_w)
        deadline = time.monotonic() + backstop + float(self.limits["grace_seconds"])
        running = _Job(request, [judge_r], workdir, deadline, slot, judge_pid=pid)
        self.slots[slot].job = running
        return running

    def _leave_server_fds(self) -> None:
        """In a child of the server: hold neither the plugin's pipes (their EOF must mean the
        server's death) nor the zygote's and supervisors' sockets."""
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        self.zygote.close()
        for s in self.slots.values():
            s.sock.close()

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
                if "pid" in message and job.judge_pid is None:  # a compiled step now running
                    job.sample_pid = int(message["pid"])
                else:
                    job.lines.append(message)
            return
        self.sel.unregister(fd)
        os.close(fd)
        del self.jobs[fd]
        job.fds.remove(fd)
        self._maybe_finish(job)

    def _hear_slot(self, slot: int) -> None:
        """A word from a slot's supervisor: the running sample's pid, or how it ended; nothing
        (its death: its sample is reported as crashed, and the slot gets a new supervisor)."""
        s = self.slots[slot]
        try:
            data = s.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            job, s.job = s.job, None
            self._replace_slot(slot)
            if job is not None:
                if job.sample_pid is not None:
                    proc.kill_group(job.sample_pid)
                job.supervised = {"outcome": "crashed", "detail": "the sample's supervisor was killed "
                                  "before it could report (did the sample kill its parent?)"}
                self._maybe_finish(job)
            return
        message = json.loads(data)
        job = s.job
        if job is None or message.get("id") != job.request["id"]:
            return
        if set(message) == {"id", "pid"}:
            job.sample_pid = int(message["pid"])
        else:
            job.supervised = message
            self._maybe_finish(job)

    def _replace_slot(self, slot: int) -> None:
        """Kill the slot's supervisor (if it only closed its socket) and start another."""
        s = self.slots[slot]
        self.sel.unregister(s.sock.fileno())
        s.sock.close()
        try:
            os.kill(s.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._start_slot(slot)

    def _maybe_finish(self, job: _Job) -> None:
        if not job.fds and (job.judge_pid is None or job.supervised is not None):
            self._finish(job)

    def _finish(self, job: _Job, verdict: dict[str, Any] | None = None) -> None:
        for fd in job.fds:
            self.sel.unregister(fd)
            os.close(fd)
            del self.jobs[fd]
        job.fds.clear()
        if job.judge_pid is not None and self.slots[job.slot].job is job:
            self.slots[job.slot].job = None
        supervised = job.supervised if job.judge_pid is not None else (job.lines[-1] if job.lines else None)
        if not (supervised and supervised.get("scratch_lost")):
            self.free_slots.append(job.slot)  # (a slot whose scratch could not be renewed is retired)
        abnormal = verdict is not None or supervised is None
        if verdict is None:
            verdict = self._combine(job, supervised)
        if job.sample_pid is not None and abnormal:
            proc.kill_group(job.sample_pid)
        for pid in (job.judge_pid, job.supervisor_pid):
            if pid is None:
                continue
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if not done:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if abnormal and job.judge_pid is None:  # whatever escaped a dead supervisor was reparented here
            spare = frozenset(p for j in self._running() for p in (j.supervisor_pid, j.judge_pid) if p)
            proc.kill_and_reap_children(spare=spare | {self.zygote_pid})
            if os.path.exists(job.workdir):  # its supervisor could not remove it
                proc.force_rmtree(job.workdir)
        self._reply(job.request, verdict)

    @staticmethod
    def _combine(job: _Job, supervised: dict[str, Any] | None) -> dict[str, Any]:
        """The judge's conclusion where it reached one; else how the sample ended, as its
        supervisor saw it. The sample's output comes from the judge, which read it."""
        if supervised is None:
            supervised = {"outcome": "crashed", "detail": "the sample's supervisor was killed before it could "
                          "report (did the sample kill its parent?)"}
        if job.judge_pid is None:  # compiled languages: the supervisor's verdict is the verdict
            return supervised
        judged = job.lines[-1] if job.lines else None
        verdict: dict[str, Any] = {"duration": supervised.get("duration", 0.0)}
        if judged is not None:
            verdict.update(stdout=judged.get("stdout", ""), stderr=judged.get("stderr", ""))
        if judged is not None and judged.get("outcome") in ("passed", "failed", "syntax_error", "oom"):
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
            for pid in (job.supervisor_pid, job.judge_pid):
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if job.judge_pid is not None:  # the slot's supervisor stopped answering: replace it
                self.slots[job.slot].job = None
                self._replace_slot(job.slot)
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
        for s in self.slots.values():
            s.sock.close()  # their end of stream: each kills its sample and exits
        self.zygote.close()  # the zygote's end of stream: it exits
        proc.kill_and_reap_children()
        if self.cgroups is not None:
            self.cgroups.close()
        # the plugin removes the directory itself: inside a mount namespace its parent is
        # read-only here, so only what it holds can go
        for name in os.listdir(self.base):
            proc.force_rmtree(os.path.join(self.base, name))


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
        server = ForkServer(int(config["workers"]), config["limits"], str(config["base"]), level, block)
    except isolation.IsolationError as e:
        os.write(1, encode({"ready": False, "error": f"isolation refused by the kernel: {e}"}))
        sys.exit(2)
    if level["mode"] == "fork":  # as PID 1 of its namespaces the server ignores SIGTERM instead
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.write(1, encode({"ready": True, "isolation": level}))
    server.serve()


if __name__ == "__main__":
    main()
