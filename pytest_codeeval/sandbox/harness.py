"""What runs inside the sample's own process, after the fork: the program, then its checks.

The verdict channel is a pipe on fd 3. A pass is the line ``PASS <token>``, written only after
the checks returned; the token is random per sample, so neither an exit status nor anything the
program prints can fake it. Other records carry the token too, so that labels are truthful.
"""

from __future__ import annotations

import builtins
import io
import json
import linecache
import os
import resource
import sys
import tempfile
import traceback
from types import CodeType, TracebackType
from typing import Any

from pytest_codeeval.sandbox import isolation, proc

RESULT_FD = 3
CANDIDATE_FILENAME = "<completion>"
TRACEBACK_CHARS = 4000
# Frames formatted: formatting all 10**6 frames of a deep RecursionError takes ~15 s, which
# would turn a prompt failure into a timeout.
TRACEBACK_FRAMES = 50


def compile_program(source: str, filename: str) -> CodeType:
    """Compile with asserts kept (optimize=0), even when this interpreter runs under -O."""
    register_source(filename, source)
    return compile(source, filename, "exec", dont_inherit=True, optimize=0)


def register_source(filename: str, source: str) -> None:
    """Let tracebacks quote lines of code that never lived in a file."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def apply_limits(limits: dict[str, Any], timeout: float, sample_uid: int | None) -> None:
    """The sample's rlimits. ``limits["address_space_bytes"]`` (-1: none) replaces the memory
    limit on RLIMIT_AS for runtimes that reserve far more address space than they use (the JVM,
    V8, Go), which stay bounded by RLIMIT_DATA."""
    memory = int(limits["memory_bytes"])
    for name, value in (
        ("RLIMIT_AS", int(limits.get("address_space_bytes", memory))),
        ("RLIMIT_DATA", memory),
        ("RLIMIT_FSIZE", int(limits["file_bytes"])),
        ("RLIMIT_NOFILE", int(limits["open_files"])),
        ("RLIMIT_CORE", 0),
        # counted per uid: bounds fork floods where each sample has a uid of its own
        ("RLIMIT_NPROC", int(limits["processes"]) if sample_uid is not None else resource.RLIM_INFINITY),
        # the kernel's backstop: the supervisor's CPU-time poll ends the sample first
        ("RLIMIT_CPU", int(timeout) + 2),
    ):
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError, AttributeError):
            pass


def setup_process(
    workdir: str,
    out_fd: int,
    err_fd: int,
    result_fd: int,
    limits: dict[str, Any],
    timeout: float,
    sample_uid: int | None = None,
) -> None:
    """Make this freshly forked process the sample's: own session, files, limits, environment."""
    os.setsid()  # own session and process group, so the whole group can be killed at once
    os.chdir(workdir)
    devnull = os.open(os.devnull, os.O_RDONLY)
    for src, dst in ((devnull, 0), (out_fd, 1), (err_fd, 2), (result_fd, RESULT_FD)):
        os.dup2(src, dst)
    os.closerange(RESULT_FD + 1, 65536)  # the server's pipes and everything else stay out of reach
    apply_limits(limits, timeout, sample_uid)
    parent = os.getppid()
    isolation.drop_privileges(sample_uid)
    # a change of uid clears the parent-death signal: set it again, and mind a parent that
    # died in between
    proc.die_with_parent()
    if os.getppid() != parent:
        os._exit(70)
    _adopt_interpreter(workdir)


def _adopt_interpreter(workdir: str) -> None:
    """Point this interpreter's environment, tempfile and std streams at the sample's own."""
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PWD": workdir})
    if hasattr(sys, "set_int_max_str_digits"):
        # the references ran without the limit (as evalplus's do): so must the samples
        sys.set_int_max_str_digits(0)
    # a forked server's tempfile already cached its own temporary directory: TMPDIR alone is ignored
    tempfile.tempdir = workdir
    # fresh stream objects: whatever the server's were holding must not leak into the sample
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)


class Checks:
    """A problem's checks: named stages run in order after the program, and optional data.

    Every stage but the last is confirmed on its own (``STAGE <name> <token>``), so a sample can
    be judged at two levels, e.g. HumanEval+'s base and plus tests. ``data`` (expected outputs,
    say) is put in the namespace as ``__codeeval_data__`` only after the program has run, so the
    program cannot rewrite it before the checks read it.
    """

    __slots__ = ("stages", "data", "sources", "data_path")

    def __init__(self, stages: list[tuple[str, CodeType]], data: Any = None,
                 sources: list[tuple[str, str]] | None = None, data_path: str | None = None) -> None:
        self.stages = stages
        self.data = data
        # what a process that does not share our memory (bubblewrap's) needs to rebuild them
        self.sources = sources or []
        self.data_path = data_path


JOB_FD = 4  # bubblewrap mode: where the sample's job arrives (JSON), read once and closed


def bwrap_main() -> None:
    """The sample's entry point under bubblewrap: a fresh interpreter, not a fork. Reads its job,
    rebuilds the checks, applies the same limits and runs like a forked sample."""
    with os.fdopen(JOB_FD, "rb") as f:
        job = json.loads(f.read())
    stages = [(name, compile_program(src, f"<tests:{name}>" if len(job["stages"]) > 1 else "<tests>"))
              for name, src in job["stages"]]
    data = None
    if job.get("data_path"):
        import pickle

        with open(job["data_path"], "rb") as f:
            data = pickle.load(f)
    apply_limits(job["limits"], float(job["timeout"]), None)
    _adopt_interpreter(os.getcwd())
    run(job["source"], Checks(stages, data), job["token"])


def run(source: str, checks: Checks, token: str) -> None:
    """Run the program and its checks, report, and end the process. Never returns."""
    # Bound before untrusted code runs: the program may rebind os.write, json, sys...
    write, dumps, exit_, flush_all = os.write, json.dumps, os._exit, _flush_streams

    def report(outcome: str, detail: str, tb: str = "") -> None:
        flush_all()
        record = dumps({"token": token, "outcome": outcome, "detail": detail, "traceback": tb})
        try:
            write(RESULT_FD, record.encode() + b"\n")
        except BaseException:
            pass  # fd 3 closed by the program: the supervisor labels it from the exit status
        exit_(0)

    try:
        code = compile_program(source, CANDIDATE_FILENAME)
    except BaseException as e:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        report("syntax_error", _one_line(e), "".join(traceback.format_exception_only(type(e), e)))
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(code, namespace)
        if checks.data is not None:
            namespace["__codeeval_data__"] = checks.data
        for i, (stage, stage_code) in enumerate(checks.stages):
            exec(stage_code, namespace)
            if i < len(checks.stages) - 1:
                write(RESULT_FD, f"STAGE {stage} {token}\n".encode())
    except MemoryError as e:
        report("oom", f"MemoryError {e}".strip(), _tail(e))
    except BaseException as e:  # SystemExit and KeyboardInterrupt too: they are failures here
        report("failed", _one_line(e), _tail(e))
    try:
        write(RESULT_FD, f"PASS {token}\n".encode())
    except BaseException:
        exit_(0)  # the program closed or stole fd 3: no confirmation, so not a pass
    flush_all()
    exit_(0)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except BaseException:
            pass


def _one_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    if isinstance(e, SystemExit):
        text = f"the program raised SystemExit({e.code!r})"
    line = text.splitlines()[0] if text else type(e).__name__
    where = _where(e)
    return (f"{line[:240]} ({where})" if where else line[:300])


def _where(e: BaseException) -> str:
    """The innermost line of the program or its checks, e.g. ``<tests> line 3: assert f(2) == 4``."""
    tb, found = e.__traceback__, None
    while tb is not None:  # cheap even for 10**6 frames: the line is looked up only once
        if tb.tb_frame.f_code.co_filename.startswith("<"):
            found = tb
        tb = tb.tb_next
    if found is None:
        return ""
    filename, lineno = found.tb_frame.f_code.co_filename, found.tb_lineno
    text = linecache.getline(filename, lineno).strip()
    return f"{filename} line {lineno}" + (f": {text[:120]}" if text else "")


def _tail(e: BaseException) -> str:
    try:
        tb = e.__traceback__
        # the first frame is this harness's own exec(): not the sample's business
        tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb
        tb = _last_entries(tb, TRACEBACK_FRAMES)
        # the limit bounds chained exceptions (__context__) too
        text = "".join(traceback.format_exception(type(e), e, tb, limit=TRACEBACK_FRAMES))
    except BaseException:
        text = _one_line(e)
    return text[-TRACEBACK_CHARS:]


def _last_entries(tb: TracebackType | None, keep: int) -> TracebackType | None:
    """Skip to the last ``keep`` entries: walking a traceback is cheap, formatting it is not."""
    n, t = 0, tb
    while t is not None:
        n, t = n + 1, t.tb_next
    while tb is not None and n > keep:
        tb, n = tb.tb_next, n - 1
    return tb
