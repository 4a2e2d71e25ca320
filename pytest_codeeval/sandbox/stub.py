"""The sample's side of the judge's channel: run the program, then answer the judge's calls.

Runs inside the untrusted sample, after its limits and privileges are in force. It holds nothing
worth stealing: no test, no expected value, no token, nobody else's program (the sample was
forked from a zygote that never saw any). Whatever it answers is only what the program computes;
the judge decides what that means. So nothing here needs to resist the program: a program that
rewrites this module only changes its own answers.

Requests (wire-encoded tuples, each with a sequence number the answer repeats):
    ("program", seq, source, filename)      -> ("ok", seq) | ("syntax_error", seq, detail, tb)
                                               | ("raised", seq, type, message, detail, tb)
    ("lookup", seq, name)                   -> ("value", seq, plain) | ("module", seq, name)
                                               | ("object", seq, Ref, type name) | ("missing", seq)
    ("call", seq, target, args, kwargs, back) -> ("ok", seq, result, mutated args)
                                               | ("raised", seq, type, message, detail, tb)
    ("getattr", seq, target, name) / ("setattr", seq, target, name, value) -> as "call"
    ("map", seq, target, [args, ...])       -> ("ok", seq, [result, ...], None | the exception
                                               of the first call that raised, as in "raised")
    ("bye", seq)                            -> the process ends
``target`` is ("name", global name) or a Ref; ``back`` lists the positions of mutable arguments
whose contents go back with the answer, so that a test that observes a mutation still can.
"""

from __future__ import annotations

import builtins
import io
import linecache
import os
import sys
import traceback
import types
from typing import Any

from pytest_codeeval.sandbox import channel, excinfo, wire

CHANNEL_FD = 3
_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes)


# Builtin types and functions the tests may pass as arguments (MBPP: ``remove_datatype(t, int)``)
# travel as Ref(-1 - their index here); both sides compute the table from the same interpreter.
BUILTIN_NAMES = tuple(sorted(n for n, v in vars(builtins).items()
                             if not n.startswith("_") and isinstance(v, (type, types.BuiltinFunctionType))))


class _Objects:
    """Objects handed to the judge by reference: the judge names them by number only."""

    def __init__(self) -> None:
        self.by_id: dict[int, Any] = {}
        self.ids: dict[int, int] = {}  # id(obj) -> number, so one object keeps one number

    def ref(self, obj: Any) -> wire.Ref:
        number = self.ids.get(id(obj))
        if number is None:
            number = len(self.by_id) + 1
            self.by_id[number] = obj
            self.ids[id(obj)] = number
        return wire.Ref(number)

    def get(self, number: int) -> Any:
        if number < 0:  # a builtin the tests passed: ours (the program may have patched it)
            return getattr(builtins, BUILTIN_NAMES[-1 - number])
        try:
            return self.by_id[number]
        except KeyError:
            raise LookupError(f"no object #{number}") from None


def main(fd: int = CHANNEL_FD) -> None:
    """Serve the judge until it says goodbye or the channel closes. Never returns."""
    objects = _Objects()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}

    def answer(message: tuple[Any, ...]) -> None:
        try:
            data = wire.dumps(message, default=objects.ref, max_bytes=channel.MAX_FRAME - channel.HEADER)
        except wire.WireError as e:  # a result that cannot travel is the program's failure
            seq = message[1]
            data = wire.dumps(("raised", seq, "WireError", str(e), f"the result cannot be judged: {e}", ""))
        try:
            channel.send(fd, data)
        except BaseException:  # noqa: BLE001 - the program closed or replaced the channel
            _end()

    while True:
        try:
            request = wire.loads(channel.recv(fd), ref=lambda n: objects.get(n))
        except BaseException:  # noqa: BLE001 - closed, replaced by the program, or garbled
            _end()
        kind, seq = request[0], request[1]
        if kind == "bye":
            _end()
        try:
            if kind == "program":
                answer(_run_program(seq, request[2], request[3], namespace))
            elif kind == "lookup":
                answer(_lookup(seq, request[2], namespace, objects))
            else:
                answer(_operate(seq, kind, request, namespace, objects))
        except BaseException as e:  # noqa: BLE001 - everything the program raises is an answer
            answer(_raised(seq, e))


def _run_program(seq: int, source: str, filename: str, namespace: dict[str, Any]) -> tuple[Any, ...]:
    try:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = compile(source, filename, "exec", dont_inherit=True, optimize=0)
    except BaseException as e:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        return ("syntax_error", seq, _one_line(e), "".join(traceback.format_exception_only(type(e), e)))
    exec(code, namespace)
    return ("ok", seq)


def _lookup(seq: int, name: str, namespace: dict[str, Any], objects: _Objects) -> tuple[Any, ...]:
    if name not in namespace:
        return ("missing", seq)
    value = namespace[name]
    if isinstance(value, types.ModuleType):
        return ("module", seq, str(getattr(value, "__name__", name)))
    if type(value) in _PLAIN_SCALARS:
        return ("value", seq, value)
    return ("object", seq, objects.ref(value), type(value).__name__[:100])


def _target(target: Any, namespace: dict[str, Any]) -> Any:
    if isinstance(target, tuple):  # ("name", global name)
        try:
            return namespace[target[1]]
        except KeyError:
            raise NameError(f"name {target[1]!r} is not defined") from None
    return target  # a Ref the decoder already turned into the object


def _operate(seq: int, kind: str, request: tuple[Any, ...], namespace: dict[str, Any],
             objects: _Objects) -> tuple[Any, ...]:
    obj = _target(request[2], namespace)
    if kind == "call":
        args, kwargs, back = request[3], request[4], request[5]
        result = obj(*args, **kwargs)
        return ("ok", seq, result, tuple(args[i] for i in back))
    if kind == "map":  # one call per argument list, in order, until one raises
        results: list[Any] = []
        for args in request[3]:
            try:
                results.append(obj(*args))
            except BaseException as e:  # noqa: BLE001 - the judge raises it where the tests reach it
                return ("ok", seq, results, _raised(seq, e)[2:])
        return ("ok", seq, results, None)
    if kind == "getattr":
        return ("ok", seq, getattr(obj, request[3]), ())
    if kind == "setattr":
        setattr(obj, request[3], request[4])
        return ("ok", seq, None, ())
    raise LookupError(f"unknown request {kind!r}")


def _raised(seq: int, e: BaseException) -> tuple[Any, ...]:
    return ("raised", seq, type(e).__name__[:100], excinfo.message(e), _one_line(e), excinfo.tail(e, "<"))


def _end() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except BaseException:  # noqa: BLE001
            pass
    os._exit(0)


def _one_line(e: BaseException) -> str:
    message = excinfo.message(e)
    text = f"{type(e).__name__}: {message}" if message else type(e).__name__
    if isinstance(e, SystemExit):
        text = f"the program raised SystemExit({e.code!r})"
    line = text.splitlines()[0] if text.strip() else type(e).__name__
    where = excinfo.where(e, "<")
    return f"{line[:240]} ({where})" if where else line[:300]


def adopt_streams() -> None:
    """Fresh stream objects on fds 0-2: whatever the zygote's were holding stays out."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
