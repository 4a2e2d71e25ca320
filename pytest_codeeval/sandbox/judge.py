"""The trusted judge: a problem's tests, run outside the sample, calling it through a channel.

The judge process is forked from the fork server for one sample and never executes the sample's
code. The tests run here, in a namespace built from the problem's trusted prelude (HumanEval's
prompt: helpers such as ``poly`` that the tests use) with the entry point bound to a
:class:`Remote` proxy. A call sends the arguments as plain data (:mod:`wire`) to the sample,
which runs the function and sends the result back as plain data: equality, builtins, asserts
and expected values all stay here, where the sample cannot reach them. A pass is this process's
own conclusion that every stage ran to its end.

Names the tests use that neither the prelude nor builtins define (MBPP's tests call helpers and
classes the solution defines) are looked up in the program on first use: plain values come back
as values, standard-library modules are imported here (never the program's, which it may have
patched), and anything else is a :class:`Remote` reference whose calls and attributes are
forwarded. What a reference cannot do: compare equal to anything but itself, or iterate.
"""

from __future__ import annotations

import builtins
import importlib
import json
import linecache
import os
import pickle
import reprlib
import select
import socket
import sys
import time
from dataclasses import dataclass
from types import CodeType
from typing import Any

from pytest_codeeval.sandbox import channel, excinfo, harness, proc, wire
from pytest_codeeval.sandbox.stub import BUILTIN_NAMES
from pytest_codeeval.sandbox.supervisor import _Capture

_MUTABLE = (list, dict, set, bytearray)
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
_BUILTIN_INDEX = {name: i for i, name in enumerate(BUILTIN_NAMES)}


class SampleGone(Exception):
    """The sample died, stopped answering, or broke the protocol: its supervisor tells why."""


class ProtocolViolation(Exception):
    """An answer no honest sample gives (wrong sequence number, undecodable data)."""


class SampleAborted(BaseException):
    """The program raised SystemExit/KeyboardInterrupt in a call: a failure no test may catch."""


class RemoteError(Exception):
    """An exception of a type that exists only in the program."""


class Remote:
    """A function or object of the program, used by the tests through the channel."""

    __slots__ = ("_judge", "_target", "_type")

    def __init__(self, judge: Judge, target: Any, type_name: str = "object") -> None:
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_type", type_name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._judge.call(self._target, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # no protocol of the program's is trusted (iteration, ...)
        return self._judge.operate("getattr", self._target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._judge.operate("setattr", self._target, name, value)

    def __repr__(self) -> str:
        name = self._target[1] if isinstance(self._target, tuple) else f"#{self._target.id}"
        return f"<{_printable(self._type)} {name} of the program>"


class _Builtins(dict):  # type: ignore[type-arg]
    """The tests' builtins: the real ones, then the program's globals for names no one else has."""

    def __init__(self, judge: Judge) -> None:
        super().__init__(builtins.__dict__)
        self.judge = judge

    def __missing__(self, name: str) -> Any:
        return self.judge.lookup(name)


class Judge:
    """One sample's judge: the channel, the sequence numbers and the program's references."""

    def __init__(self, fd: int, deadline: float, captures: dict[int, Any] | None = None,
                 frozen: frozenset[int] = frozenset()) -> None:
        self.fd = fd
        self.deadline = deadline
        self.frozen = frozen  # the problem's data: never written to
        # the sample's output pipes, read while we wait for it: it must never block on them
        self.pump = {out: c.feed for out, c in (captures or {}).items()}
        self.seq = 0
        self.remotes: dict[int, Remote] = {}
        self.stage = ""  # the check stage running (base, plus, tests)
        # the input of :meth:`results` the tests hold (index, function, arguments): what a
        # failure's report names, formatted only then
        self.current: tuple[int, str, tuple[Any, ...]] | None = None

    def current_input(self) -> str:
        """``base input #3: f(1, [2])`` for the input of a batched call the tests were judging
        (or the program raised on); "" outside those calls."""
        if self.current is None:
            return ""
        index, name, args = self.current
        try:
            return f"{self.stage} input #{index}: {call_text(name, args)}".strip()
        except BaseException:  # noqa: BLE001 - MemoryError, say: the verdict without it
            return ""

    # -- the channel --------------------------------------------------------------------------
    def request(self, *message: Any) -> tuple[Any, ...]:
        self.seq += 1
        kind, rest = message[0], message[1:]
        try:
            data = wire.dumps((kind, self.seq, *rest), default=self._outgoing)
        except wire.WireError as e:
            raise TypeError(f"the tests passed a value the sandbox cannot send: {e}") from None
        try:
            channel.send(self.fd, data, self.deadline, self.pump)
            answer = wire.loads(channel.recv(self.fd, self.deadline, pump=self.pump), ref=self._incoming)
        except (channel.ChannelClosed, channel.ChannelTimeout) as e:
            raise SampleGone(str(e)) from None
        except (wire.WireError, channel.ChannelError) as e:
            raise ProtocolViolation(f"an answer that cannot be decoded ({e})") from None
        if not (isinstance(answer, tuple) and len(answer) >= 2 and answer[1] == self.seq
                and isinstance(answer[0], str)):
            raise ProtocolViolation("an answer out of turn")
        return answer

    def _outgoing(self, obj: Any) -> Any:
        if isinstance(obj, Remote) and isinstance(obj._target, wire.Ref):
            return obj._target
        name = getattr(obj, "__name__", None)
        if isinstance(name, str) and name in _BUILTIN_INDEX and getattr(builtins, name, None) is obj:
            return wire.Ref(-1 - _BUILTIN_INDEX[name])  # a builtin type or function, by name
        return obj  # unsupported: dumps raises WireError

    def _incoming(self, number: int) -> Any:
        if number < 0:
            if -1 - number >= len(BUILTIN_NAMES):
                raise wire.WireError("an unknown builtin")
            return getattr(builtins, BUILTIN_NAMES[-1 - number])
        if number not in self.remotes:
            self.remotes[number] = Remote(self, wire.Ref(number))
        return self.remotes[number]

    # -- what the tests do --------------------------------------------------------------------
    def call(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        back = tuple(i for i, a in enumerate(args) if type(a) in _MUTABLE and id(a) not in self.frozen)
        answer = self.request("call", target, args, kwargs, back)
        result = self._result(answer)
        mutated = answer[3] if len(answer) > 3 else ()
        if isinstance(mutated, tuple) and len(mutated) == len(back):
            for i, new in zip(back, mutated):
                _copy_back(args[i], new)
        return result

    def results(self, target: Any, inputs: list[Any]) -> Any:
        """``target(*inp)`` for each of ``inputs``, in order, as a generator: the calls go in
        batches (growing, so that a sample wrong on its first input costs one round trip and
        a right one a few), and an exception is raised where the tests reach it. For the
        expected-output checks of HumanEval+/MBPP+, which call one function on many inputs."""
        done, size = 0, 1
        name = str(target[1]) if isinstance(target, tuple) else "the function"
        while done < len(inputs):
            batch = [tuple(inp) for inp in inputs[done:done + size]]
            answer = self.request("map", target, batch)
            outs, error = (answer[2], answer[3]) if answer[0] == "ok" and len(answer) == 4 else (None, None)
            if not isinstance(outs, list) or len(outs) > len(batch):
                raise ProtocolViolation("a malformed answer to a batch of calls")
            for k, out in enumerate(outs):
                self.current = (done + k, name, batch[k])
                yield out
            if error is not None:
                if not (isinstance(error, tuple) and len(error) == 4):
                    raise ProtocolViolation("a malformed answer to a batch of calls")
                # the tests see the exception where they reach the call (their loop's line):
                # the report names the input from their own copy
                self.current = (done + len(outs), name, batch[len(outs)])
                raise remote_exception(*error)
            if len(outs) < len(batch):
                raise ProtocolViolation("a batch of calls answered in part")
            done += len(batch)
            size = min(size * 4, 256)
        self.current = None  # every input judged: what fails next is no input's

    def operate(self, kind: str, target: Any, *rest: Any) -> Any:
        return self._result(self.request(kind, target, *rest))

    def lookup(self, name: str) -> Any:
        answer = self.request("lookup", name)
        kind = answer[0]
        if kind == "value" and len(answer) == 3:
            return answer[2]
        if kind == "module" and len(answer) == 3 and isinstance(answer[2], str):
            module = answer[2]
            if module.partition(".")[0] in _STDLIB:
                return importlib.import_module(module)  # ours, not the program's patched copy
            raise NameError(f"name {name!r} is a module the tests cannot use ({_printable(module)})")
        if kind == "object" and len(answer) == 4 and isinstance(answer[2], Remote):
            remote = answer[2]
            object.__setattr__(remote, "_type", str(answer[3]))
            return remote
        if kind == "missing":
            raise KeyError(name)  # the interpreter turns it into NameError
        raise ProtocolViolation("a malformed answer to a lookup")

    def _result(self, answer: tuple[Any, ...]) -> Any:
        if answer[0] == "ok" and len(answer) >= 3:
            return answer[2]
        if answer[0] == "raised" and len(answer) == 6:
            raise remote_exception(*answer[2:])
        raise ProtocolViolation("a malformed answer to a call")

    def bye(self) -> None:
        self.seq += 1
        try:
            channel.send(self.fd, wire.dumps(("bye", self.seq)), time.monotonic() + 0.5)
        except (channel.ChannelClosed, channel.ChannelTimeout, OSError):
            pass


def _results(fn: Any, inputs: list[Any]) -> Any:
    """For the tests: ``fn(*inp)`` for each input, batched when ``fn`` is the program's."""
    if isinstance(fn, Remote):
        return fn._judge.results(fn._target, inputs)
    return (fn(*inp) for inp in inputs)


class _Short(reprlib.Repr):
    """reprlib, bounded for the values the tests hold: a huge int is described, never printed
    (its decimal text is quadratic to make)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 80
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdict = 8
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        return f"<int of {x.bit_length()} bits>" if x.bit_length() > 2000 else repr(x)


def call_text(name: str, args: tuple[Any, ...], width: int = 300) -> str:
    """``name(arg, ...)`` for a report, bounded; "?" where a value's repr fails."""
    short = _Short()
    parts = []
    for a in args:
        try:
            parts.append(short.repr(a))
        except Exception:  # noqa: BLE001
            parts.append("?")
    text = f"{_printable(name)}({', '.join(parts)})"
    return text if len(text) <= width else text[:width] + "...)"


def remote_exception(type_name: Any, message: Any, detail: Any, tb: Any) -> BaseException:
    """The judge's counterpart of an exception the program raised: the builtin class of that
    name where there is one (so that tests that expect a ValueError still see one)."""
    type_name, message = str(type_name), str(message)
    cls = getattr(builtins, type_name, None)
    error: BaseException
    if isinstance(cls, type) and issubclass(cls, BaseException) and not issubclass(cls, Exception):
        error = SampleAborted(f"{type_name}: {message}" if message else type_name)
    elif isinstance(cls, type) and issubclass(cls, Exception):
        try:
            error = cls(message)
        except Exception:  # classes that want other arguments (UnicodeDecodeError)
            error = RemoteError(f"{type_name}: {message}")
    else:
        error = RemoteError(f"{type_name}: {message}")
    error.codeeval_remote = (str(detail), str(tb))  # type: ignore[attr-defined]
    return error


def _copy_back(original: Any, new: Any) -> None:
    """Put a call's mutation of an argument into the tests' own object."""
    try:
        if type(original) is list and type(new) is list or type(original) is bytearray and type(new) is bytearray:
            original[:] = new
        elif type(original) is dict and type(new) is dict or type(original) is set and type(new) is set:
            original.clear()
            original.update(new)
    except Exception:  # noqa: BLE001
        pass


def run(
    fd: int,
    source: str,
    stages: list[tuple[str, CodeType]],
    namespace: dict[str, Any],
    entry_point: str | None,
    data: Any,
    deadline: float,
    captures: dict[int, Any] | None = None,
    frozen: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """Judge one sample: send it its program, run every stage, say what happened.

    -> {"outcome": passed|failed|syntax_error|oom|sample_died, "detail", "traceback", "stages"}
    ("sample_died": the sample's supervisor knows the label: timeout, crashed, ...)."""
    judge = Judge(fd, deadline, captures, frozen)
    passed: list[str] = []
    try:
        answer = judge.request("program", source, "<completion>")
        if answer[0] == "syntax_error" and len(answer) == 4:
            return _verdict("syntax_error", str(answer[2]), str(answer[3]), passed)
        if answer[0] == "raised" and len(answer) == 6:
            raise remote_exception(*answer[2:])
        if answer[0] != "ok":
            raise ProtocolViolation("a malformed answer to the program")
        namespace["__builtins__"] = _Builtins(judge)
        if entry_point:
            namespace[entry_point] = Remote(judge, ("name", entry_point), "function")
        namespace["__codeeval_results__"] = _results
        if data is not None:
            namespace["__codeeval_data__"] = data
        for i, (stage, code) in enumerate(stages):
            judge.stage, judge.current = stage, None
            exec(code, namespace)
            if i < len(stages) - 1:
                passed.append(stage)
        return _verdict("passed", "", "", passed)
    except SampleGone as e:
        return _verdict("sample_died", str(e), "", passed)
    except ProtocolViolation as e:
        return _verdict("failed", f"the sample broke the judge's protocol: {e}", "", passed)
    except MemoryError as e:
        return _verdict("oom", *_describe(e, judge.current_input()), passed)
    except BaseException as e:  # noqa: BLE001 - assertions, the program's exceptions, SampleAborted
        return _verdict("failed", *_describe(e, judge.current_input()), passed)
    finally:
        judge.bye()


def _verdict(outcome: str, detail: str, tb: str, stages: list[str]) -> dict[str, Any]:
    return {"outcome": outcome, "detail": detail, "traceback": tb, "stages": list(stages)}


def _describe(e: BaseException, current: str = "") -> tuple[str, str]:
    """(one line, traceback) of a failure: the test's own line, the program's where the
    exception came from the program, and ``current``, the input of a batched call the tests
    were at (HumanEval+/MBPP+, whose tests' line is then their loop's or their comparison's;
    their assertions name it themselves)."""
    remote = getattr(e, "codeeval_remote", None)
    where = excinfo.where(e, "<tests", 160)
    on = f"; on {current}" if current and not isinstance(e, AssertionError) else ""
    if remote is not None:
        detail, tb = remote
        detail = f"{detail}{on}" + (f"; called from {where}" if where else "")
        return detail[:1000], str(tb)[-excinfo.TRACEBACK_CHARS:]
    if isinstance(e, SampleAborted):
        return (f"the program raised {e}" + (f" ({where})" if where else "") + on)[:1000], ""
    text = excinfo.message(e)
    line = f"{type(e).__name__}: {text}" if text else type(e).__name__
    line = line.splitlines()[0] if line.strip() else type(e).__name__
    return (f"{line[:240]} ({where})" if where else line[:300]) + on, excinfo.tail(e, "<tests")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(text)[:100])


@dataclass
class Problem:
    """A problem's tests as the judge keeps them: compiled once, data loaded on first use."""

    stages: list[tuple[str, CodeType]]
    sources: list[tuple[str, str]]
    prelude: CodeType | None
    entry_point: str | None
    data_path: str | None


def compile_tests(message: dict[str, Any]) -> Problem:
    """Compile a problem's tests (each under a name of its own, so that a failure report quotes
    this problem's line) and its prelude. Raises on tests that do not compile."""
    label = str(message.get("label") or "")
    many = len(message["stages"]) > 1
    base = f"<tests:{label}" if label else "<tests"
    sources = [(str(name), str(src)) for name, src in message["stages"]]
    stages = [(name, harness.compile_program(src, f"{base}:{name}>" if many else f"{base}>")) for name, src in sources]
    prelude = None
    if message.get("prelude"):
        try:
            prelude = harness.compile_program(str(message["prelude"]), f"<prelude:{label}>" if label else "<prelude>")
        except BaseException:  # noqa: BLE001 - a prelude that does not compile gives no helpers
            prelude = None
    entry = message.get("entry_point")
    return Problem(stages, sources, prelude, str(entry) if entry else None, message.get("data"))


class _Data:
    """Problems' data (pickled expected outputs, written by the plugin), a few kept loaded, with
    the identities of every mutable container in them: a call's mutation of an argument is never
    copied back into data the next sample is judged with."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.loaded: dict[str, tuple[Any, frozenset[int]]] = {}

    def get(self, path: str | None) -> tuple[Any, frozenset[int]]:
        if path is None:
            return None, frozenset()
        if path not in self.loaded:
            with open(path, "rb") as f:
                value = pickle.load(f)
            self.loaded[path] = (value, _containers(value))
            while len(self.loaded) > self.keep:
                del self.loaded[next(iter(self.loaded))]
        return self.loaded[path]


def _containers(value: Any) -> frozenset[int]:
    if type(value) is dict and all(type(v) is tuple and len(v) == 2 for v in value.values()):
        value = [v[0] for v in value.values()]  # {level: (inputs, expected)}: calls get inputs only
    ids, todo = set(), [value]
    while todo:
        x = todo.pop()
        if type(x) in _MUTABLE or type(x) is tuple:
            if type(x) in _MUTABLE:
                ids.add(id(x))
            todo.extend(x.values() if type(x) is dict else x)
    return frozenset(ids)


def serve(sock: socket.socket) -> None:
    """A worker slot's judge, forked once from the fork server: judge that slot's samples one
    after another as the server sends them. Messages (SOCK_SEQPACKET, JSON):

        {"op": "tests", "key": K, "stages": [[NAME, SOURCE], ...], "prelude", "entry_point",
         "label", "data"}                       a problem's tests, compiled here once
        {"op": "run", "id": I, "tests": K, "source": P, "deadline": SECONDS, "output": BYTES}
            with three descriptors: the channel to the sample, its stdout and stderr
        -> {"id": I, "outcome": ..., "detail", "traceback", "stages", "stdout", "stderr"}

    Every sample gets a fresh namespace (the prelude run anew) and its own channel; nothing the
    sample sends can reach past its own verdict. Returns when the server closes the socket."""
    proc.die_with_parent()
    proc.set_dumpable(False)
    problems: dict[str, Problem | str] = {}
    data = _Data()
    while True:
        try:
            raw, fds, _, _ = socket.recv_fds(sock, 1 << 24, 4)
        except InterruptedError:
            continue
        if not raw:
            return
        message = json.loads(raw)
        if message["op"] == "file":  # too large for one datagram: handed over as a file
            path = str(message["path"])
            with open(path, "rb") as f:
                message = json.loads(f.read())
            os.unlink(path)
        if message["op"] == "tests":
            try:
                problems[message["key"]] = compile_tests(message)
            except BaseException as e:  # noqa: BLE001 - a broken benchmark: every sample of it errors
                problems[message["key"]] = f"the checks do not compile: {type(e).__name__}: {e}"
            continue
        try:
            verdict = _judge_one(message, fds, problems.get(message["tests"]), data)
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        sock.send(_fit({"id": message["id"], **verdict}))


MESSAGE_BYTES = 150_000  # what one SOCK_SEQPACKET datagram safely carries (its socket's buffer)


def _fit(verdict: dict[str, Any]) -> bytes:
    """The verdict as one datagram: the sample's output cut further if it would not fit."""
    data = json.dumps(verdict, ensure_ascii=False).encode("utf-8", "replace")
    keep = 32768
    while len(data) > MESSAGE_BYTES and keep >= 64:
        for key in ("stdout", "stderr", "traceback", "detail"):
            text = str(verdict.get(key, ""))
            if len(text) > keep:
                verdict[key] = text[:keep] + f"\n[... {len(text) - keep} more characters not kept]"
        data = json.dumps(verdict, ensure_ascii=False).encode("utf-8", "replace")
        keep //= 4
    return data


def _judge_one(message: dict[str, Any], fds: list[int], problem: Problem | str | None, data: _Data) -> dict[str, Any]:
    chan, out_fd, err_fd = fds
    deadline = time.monotonic() + float(message["deadline"])
    captures = {fd: _Capture(fd, int(message["output"])) for fd in (out_fd, err_fd)}
    for fd in (chan, out_fd, err_fd):
        os.set_blocking(fd, False)
    if not isinstance(problem, Problem):
        verdict = _verdict("crashed", problem or "unknown checks (internal error: tests were not sent)", "", [])
        Judge(chan, deadline).bye()
    else:
        for (_, code), (_, text) in zip(problem.stages, problem.sources):  # reports quote these lines
            linecache.cache[code.co_filename] = (len(text), None, text.splitlines(True), code.co_filename)
        try:
            values, frozen = data.get(problem.data_path)
        except BaseException as e:  # noqa: BLE001
            verdict = _verdict("crashed", f"the checks' data cannot be loaded: {type(e).__name__}: {e}", "", [])
            Judge(chan, deadline).bye()
        else:
            namespace: dict[str, Any] = {"__name__": "__main__"}
            if problem.prelude is not None:
                try:
                    exec(problem.prelude, namespace)
                except BaseException:  # noqa: BLE001 - a prelude that does not run gives no helpers
                    namespace = {"__name__": "__main__"}
            verdict = run(chan, str(message["source"]), problem.stages, namespace, problem.entry_point, values,
                          deadline, captures, frozen)
    # the sample ends on our goodbye (or was killed): read its output to the end
    pending = dict(captures)
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(list(pending), [], [], max(0.0, deadline - time.monotonic()))
        for fd in ready:
            if not pending[fd].feed():
                del pending[fd]
    verdict.update(stdout=captures[out_fd].text(), stderr=captures[err_fd].text())
    return verdict
