"""What makes a freshly forked process the sample's: its session, files, limits, uid and
interpreter state; and compiling code with asserts kept. The sample then runs :mod:`stub`,
which serves the judge on fd 3 (the channel); the tests themselves never run in the sample.
"""

from __future__ import annotations

import io
import json
import linecache
import os
import resource
import sys
import tempfile
from types import CodeType
from typing import Any, Callable

from pytest_codeeval.sandbox import isolation, proc

RESULT_FD = 3  # the sample's end of the judge's channel


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
    *,
    join: Callable[[], None] | None = None,
    private_view: bool = False,
    read_search: bool = False,
) -> None:
    """Make this freshly forked process the sample's: own session, files, limits, environment.

    ``join`` (a cgroup) runs first, as root. ``private_view`` is the slot supervisor's doing:
    its mount and IPC namespaces, with ``/tmp`` the slot's scratch, cleared after every sample."""
    os.setsid()  # own session and process group, so the whole group can be killed at once
    if join is not None:
        join()
    os.chdir(workdir)
    devnull = os.open(os.devnull, os.O_RDONLY)
    for src, dst in ((devnull, 0), (out_fd, 1), (err_fd, 2), (result_fd, RESULT_FD)):
        os.dup2(src, dst)
    os.closerange(RESULT_FD + 1, 65536)  # the server's pipes and everything else stay out of reach
    apply_limits(limits, timeout, sample_uid)
    parent = os.getppid()
    isolation.drop_privileges(sample_uid, read_search=read_search)
    # a change of uid clears the parent-death signal: set it again, and mind a parent that
    # died in between
    proc.die_with_parent()
    if os.getppid() != parent:
        os._exit(70)
    _adopt_interpreter(workdir)


def _adopt_interpreter(workdir: str) -> None:
    """Point this interpreter's environment, tempfile and std streams at the sample's own."""
    global _prepared
    if _prepared is not None and _prepared[0] == workdir:  # done once, before any fork
        streams = _prepared[1]
        _prepared = None
    else:
        _adopt_environment(workdir)
        streams = _fresh_streams()
    sys.stdin, sys.stdout, sys.stderr = streams


def _adopt_environment(workdir: str) -> None:
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PWD": workdir})
    if hasattr(sys, "set_int_max_str_digits"):
        # the references ran without the limit (as evalplus's do): so must the samples
        sys.set_int_max_str_digits(0)
    # a forked server's tempfile already cached its own temporary directory: TMPDIR alone is ignored
    tempfile.tempdir = workdir


def _fresh_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    # fresh stream objects: whatever the server's were holding must not leak into the sample
    return (io.TextIOWrapper(io.FileIO(0, "r", closefd=False)),
            io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True),
            io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True))


# (workdir, streams) made by prepare_samples in a slot's supervisor, inherited unused by every
# sample it forks
_prepared: tuple[str, tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]] | None = None


def prepare_samples(workdir: str) -> None:
    """In a slot's supervisor, once, where every sample's directory is ``workdir`` (its private
    ``/tmp``): do here, before any fork, what each sample would otherwise do itself in
    :func:`setup_process`: the environment, and stream objects that this process never uses
    (each sample gets them as they were made, written by nothing). A forked process pays for
    every page it writes of its parent's memory (a copy), and building these in each sample
    wrote about a hundred; see perf/sample_faults.py."""
    global _prepared
    _adopt_environment(workdir)
    _prepared = (workdir, _fresh_streams())
    isolation.prepare()


def bwrap_main() -> None:
    """The sample's entry point under bubblewrap: a fresh interpreter, not a fork. Applies the
    same limits as a forked sample and serves the judge on fd 3 like one."""
    config = json.loads(sys.argv[-1])
    apply_limits(config["limits"], float(config["timeout"]), None)
    _adopt_interpreter(os.getcwd())
    from pytest_codeeval.sandbox import stub

    stub.main(RESULT_FD)
