"""One sample of a language other than Python: write its files, compile, run, judge.

Runs in the per-sample supervisor the fork server forks (as :func:`supervisor.supervise` does for
Python), and keeps its guarantees: each step is a process in its own session with the sample's
rlimits, uid and minimal environment, watched on its own CPU time with a wall-clock backstop;
whatever a step leaves behind is killed before the next starts; the directory is removed before
the verdict is sent. The compile step has its own CPU limit (the language's), apart from the
run's, and both durations are reported.

A pass is only the test driver's confirmation: ``PASS <token>`` in the verdict file, which the
runner's assembly writes after the last test returned. Exit statuses decide the other labels:
a non-zero exit (an assertion, an uncaught exception, a panic) is ``failed``, a signal
``crashed`` (SIGABRT is ``failed`` where aborting is how asserts fail), exit 0 without the
confirmation ``exited``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import time
from dataclasses import dataclass
from typing import Any

from pytest_codeeval.sandbox import fsroot, harness, isolation, languages, proc
from pytest_codeeval.sandbox.supervisor import _Capture, _signame, _watch, wall_backstop

_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_EXEC_MARK = "codeeval: cannot execute"
_DETAIL = 300  # characters of a one-line detail


@dataclass
class _Step:
    status: int | None
    timed_out: str  # "" | "cpu" | "wall"
    stdout: str
    stderr: str
    seconds: float


def backstop(language: dict[str, Any], timeout: float) -> float:
    """Wall-clock seconds a sample of ``language`` may take, both steps together."""
    return wall_backstop(float(language.get("compile_timeout", languages.COMPILE_TIMEOUT))) + wall_backstop(timeout)


@dataclass(frozen=True)
class Isolation:
    """What a compiled sample's steps get beyond rlimits and uid (``namespaces`` mode): a
    scratch tmpfs of ``scratch`` (bytes, inodes) as their directory, the allow-list root with
    the toolchain's directories, a mount and IPC namespace per step, the slot's cgroup."""

    scratch: tuple[int, int] | None = None
    group: Any = None


def tool_roots(tools: dict[str, str]) -> list[str]:
    """The directories a toolchain needs besides the system's: a compiler outside /usr is
    exposed with its whole installation (rustup's ``toolchains/<name>``: bin, lib and sysroot),
    prepared caches and jars with their directory."""
    roots = []
    for value in tools.values():
        if not (isinstance(value, str) and os.path.isabs(value) and os.path.exists(value)):
            continue
        real = os.path.realpath(value)
        if any(real == d or real.startswith(d + "/") for d in fsroot.SYSTEM_DIRS):
            continue
        if os.path.isdir(real):
            roots.append(real)
        elif os.access(real, os.X_OK) and os.path.basename(os.path.dirname(real)) == "bin":
            roots.append(os.path.dirname(os.path.dirname(real)))
        else:
            roots.append(os.path.dirname(real))
    return sorted(set(roots))


def supervise(language: dict[str, Any], source: str, tests: str, workdir: str, timeout: float,
              limits: dict[str, Any], report_fd: int, sample_uid: int | None = None,
              isolation: Isolation = Isolation()) -> None:
    """Judge ``source`` (prompt + completion) with the test driver ``tests``; write the verdict
    (one JSON line) to ``report_fd``. ``language``: {"name", "tools", "compile_timeout"}."""
    proc.die_with_parent()
    proc.become_subreaper()
    runner = languages.get(str(language["name"]))
    tools = dict(language["tools"])
    compile_limit = float(language.get("compile_timeout", runner.compile_timeout))
    os.mkdir(workdir, 0o700)
    uid = sample_uid if sample_uid is not None else os.getuid()
    if isolation.scratch is not None:
        fsroot.make_scratch(workdir, *isolation.scratch, uid)
    elif sample_uid is not None:
        os.chown(workdir, sample_uid, sample_uid)
    view = fsroot.default_read_only(tool_roots(tools)) if isolation.scratch is not None else None
    token = secrets.token_hex(16)
    verdict_path = os.path.join(workdir, languages.VERDICT_FILE)
    step_limits = dict(limits)
    if runner.reserves_address_space:
        step_limits["address_space_bytes"] = -1  # RLIMIT_DATA still bounds what it writes
    env = {**_BASE_ENV, "HOME": workdir, "TMPDIR": workdir, "PWD": workdir,
           **runner.environment(tools, workdir, limits)}
    compile_seconds: float | None = None
    try:
        files = runner.files(source, tests, verdict_path, token)
        for name, text in files.items():
            _write(os.path.join(workdir, name), text)
        argv = runner.compile_argv(tools, workdir, files, limits)
        verdict: dict[str, Any] | None = None
        if argv is not None:
            step = _step(argv, env, workdir, step_limits, compile_limit, sample_uid, report_fd, limits, view,
                         isolation.group)
            compile_seconds = step.seconds
            verdict = _judge_compile(runner, step, compile_limit)
        if verdict is None:
            _remove(verdict_path)  # only the run may confirm
            step = _step(runner.run_argv(tools, workdir, limits), env, workdir, step_limits, timeout, sample_uid,
                         report_fd, limits, view, isolation.group)
            verdict = _judge_run(runner, step, _read_verdict(verdict_path), token, timeout)
        else:
            step = _Step(None, "", step.stdout, step.stderr, 0.0)
    except languages.AssemblyError as e:
        verdict, step = {"outcome": "crashed", "detail": f"cannot assemble the program: {e}"}, _Step(None, "", "", "", 0.0)
    verdict.update(stdout=step.stdout, stderr=step.stderr, duration=round(step.seconds, 6),
                   compile_duration=None if compile_seconds is None else round(compile_seconds, 6), stages=[])
    if isolation.scratch is not None:
        fsroot.drop_scratch(workdir)
    else:
        proc.force_rmtree(workdir)
    os.write(report_fd, json.dumps(verdict).encode() + b"\n")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_verdict(path: str) -> str:
    """The verdict file's first KiB, if it is a regular file: the sample owns the directory, so
    it could have put a link or a FIFO there (never followed, never blocked on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, 1024).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _step(argv: list[str], env: dict[str, str], workdir: str, limits: dict[str, Any], cpu_limit: float,
          sample_uid: int | None, report_fd: int, output_limits: dict[str, Any],
          view: tuple[list[str], list[str]] | None = None, group: Any = None) -> _Step:
    """Run ``argv`` as the sample: own session, rlimits, uid; watched like a Python sample."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            proc.die_with_parent()
            os.setsid()  # its own group: killed as one at the limit
            if group is not None:
                group.join()
            if view is not None:  # the allow-list root (with the toolchain), a private IPC namespace;
                # the directory keeps its path (the commands name their files by it)
                fsroot.enter_root(view[0], view[1], [workdir])
                fsroot.private_ipc()
            os.chdir(workdir)
            devnull = os.open(os.devnull, os.O_RDONLY)
            for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2)):
                os.dup2(src, dst)
            os.closerange(3, 65536)
            harness.apply_limits(limits, cpu_limit, sample_uid)
            parent = os.getppid()
            isolation.drop_privileges(sample_uid, across_exec=True, read_search=view is None)
            proc.die_with_parent()  # a change of uid cleared it
            if os.getppid() != parent:
                os._exit(70)
            os.execve(argv[0], argv, env)
        except BaseException as e:
            try:
                os.write(2, f"{_EXEC_MARK} {argv[0]}: {e}\n".encode())
            except BaseException:
                pass
        finally:
            os._exit(languages.EXEC_FAILED)
    for fd in (out_w, err_w):
        os.close(fd)
    os.write(report_fd, json.dumps({"pid": pid}).encode() + b"\n")  # whom the server kills if we die
    size = int(output_limits["output_bytes"])
    captures = {out_r: _Capture(out_r, size), err_r: _Capture(err_r, size)}
    status, timed_out, _ = _watch(pid, captures, cpu_limit, started + wall_backstop(cpu_limit))
    seconds = time.monotonic() - started
    proc.kill_group(pid)
    proc.kill_and_reap_children()  # nothing a step started outlives it
    for cap in captures.values():
        cap.drain()
    stdout, stderr = (_relative(captures[fd].text(), workdir) for fd in (out_r, err_r))
    return _Step(status, timed_out, stdout, stderr, seconds)


def _relative(text: str, workdir: str) -> str:
    """``text`` with the sample's directory left out of paths (``/tmp/codeeval-sandbox-x/s3/Problem.java:19``
    reads ``Problem.java:19``): the directory is gone once the verdict is sent, and failure
    reports cite the files by name (:mod:`pytest_codeeval.excerpt`)."""
    return text.replace(workdir + "/", "").replace(workdir, ".") if workdir in text else text


def _first_line(text: str, patterns: tuple[str, ...]) -> str:
    """The first line matching the first pattern that matches any line (patterns in order of
    preference); a line ending in ":" takes the next line along (Rust's panics, say)."""
    lines = [line.rstrip() for line in text.splitlines()]
    for pattern in patterns:
        rx = re.compile(pattern)
        for i, line in enumerate(lines):
            if rx.search(line):
                if line.endswith(":") and i + 1 < len(lines) and lines[i + 1].strip():
                    line = f"{line} {lines[i + 1].strip()}"
                return line.strip()[:_DETAIL]
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:_DETAIL] if lines else ""


def _exec_failure(step: _Step) -> dict[str, Any] | None:
    if step.status is not None and os.WIFEXITED(step.status) and os.WEXITSTATUS(step.status) == languages.EXEC_FAILED \
            and step.stderr.startswith(_EXEC_MARK):
        return {"outcome": "crashed", "detail": step.stderr.splitlines()[0][:_DETAIL]}
    return None


def _judge_compile(runner: languages.LanguageRunner, step: _Step, limit: float) -> dict[str, Any] | None:
    """None when the program compiled; else the verdict."""
    what = "the syntax check" if runner.check_outcome == "syntax_error" else "compilation"
    if step.timed_out:
        return {"outcome": "timeout", "detail": f"{what} timed out ({limit:g} s of CPU time, or "
                f"{wall_backstop(limit):g} s of wall-clock time)"}
    if step.status is None:
        return {"outcome": "crashed", "detail": f"{what} could not be waited for"}
    failed = _exec_failure(step)
    if failed:
        return failed
    if os.WIFSIGNALED(step.status):
        return {"outcome": "crashed", "detail": f"{what} was killed by signal {_signame(os.WTERMSIG(step.status))}"}
    code = os.WEXITSTATUS(step.status)
    if code == 0:
        return None
    output = step.stderr + "\n" + step.stdout
    line = _first_line(output, runner.compile_error_patterns) or _last_line(output)
    return {"outcome": runner.check_outcome, "detail": line or f"{what} failed with exit status {code}"}


def _judge_run(runner: languages.LanguageRunner, step: _Step, confirmation: str, token: str,
               timeout: float) -> dict[str, Any]:
    if f"PASS {token}" in confirmation.splitlines():
        return {"outcome": "passed", "detail": ""}
    if step.timed_out == "cpu":
        return {"outcome": "timeout", "detail": f"timed out after {timeout:g} s of CPU time"}
    if step.timed_out == "wall":
        return {"outcome": "timeout", "detail": f"timed out after {wall_backstop(timeout):g} s of wall-clock "
                f"time, with under {timeout:g} s of CPU time (sleeping, blocked, or starved of CPU on a loaded machine)"}
    if step.status is None:
        return {"outcome": "crashed", "detail": "the sample's process could not be waited for"}
    failed = _exec_failure(step)
    if failed:
        return failed
    output = step.stderr + "\n" + step.stdout
    oom = _first_line(output, runner.oom_patterns) if runner.oom_patterns else ""
    if oom:
        return {"outcome": "oom", "detail": oom}
    why = _first_line(output, runner.failure_patterns) if runner.failure_patterns else ""
    if os.WIFSIGNALED(step.status):
        sig = os.WTERMSIG(step.status)
        if sig == signal.SIGXCPU:
            return {"outcome": "timeout", "detail": f"CPU time limit reached ({timeout:g} s)"}
        if sig == signal.SIGABRT and runner.abort_is_failure and why:
            return {"outcome": "failed", "detail": why}
        return {"outcome": "crashed", "detail": f"killed by signal {_signame(sig)}" + (f": {why}" if why else "")}
    code = os.WEXITSTATUS(step.status)
    if code == 0:
        return {"outcome": "exited", "detail": "the program exited with status 0 before its tests confirmed"}
    if why:
        return {"outcome": "failed", "detail": f"{why} (exit status {code})"}
    last = _last_line(step.stderr)
    return {"outcome": "failed", "detail": f"the tests failed with exit status {code}" + (f": {last}" if last else "")}
