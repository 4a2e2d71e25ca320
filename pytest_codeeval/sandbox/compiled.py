"""Samples of a language other than Python, judged as a group: write each sample's files,
compile each distinct program once, run each sample alone, judge.

Runs in the supervisor the fork server forks for a group of samples of one problem (as
:func:`supervisor.supervise` judges Python samples), and keeps, for each sample, the guarantees
of judging it alone: each step is a process in its own session with the sample's rlimits, uid
and minimal environment, watched on its own CPU time with a wall-clock backstop; whatever a step
leaves behind is killed before the next starts; each run gets a fresh directory holding only its
own program's files, and the directory is removed before the sample's verdict is sent. The
compile step has its own CPU limit (the language's), apart from the run's, and both durations
are reported.

How a group is judged, and why no verdict depends on the group:

* Samples whose files are byte-identical (the token and the verdict file's path are not in
  them: they come from the run's environment) are one *unit*, compiled once. A unit compiles,
  and each of its samples runs, in the same directory path (the first sample's, as if it were
  judged alone), so whatever a compiler writes into a program or its messages about that path
  reads the same after the path is left out.
* Where the language has a batch compiler (Java: javac in one JVM) and the group has several
  units, they compile in one step first; a unit's result is kept only when it is clean (javac
  finished, with status 0 or 1, in well under the compile limit), every other unit is compiled
  again alone, as it would have been.
* What a compile leaves is copied into a directory only root can reach (and, in ``namespaces``
  mode, absent from every step's root), and from there into each of the unit's samples' fresh
  directory before it runs: no sample reaches another's files, and a run cannot change what
  the next sample runs.

A pass is only the test driver's confirmation: ``PASS <token>`` in the verdict file, which the
runner's assembly writes after the last test returned, the token being the sample's own (a
fresh one per run). Exit statuses decide the other labels: a non-zero exit (an assertion, an
uncaught exception, a panic) is ``failed``, a signal ``crashed`` (SIGABRT is ``failed`` where
aborting is how asserts fail), exit 0 without the confirmation ``exited``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_codeeval.sandbox import fsroot, harness, isolation, languages, proc
from pytest_codeeval.sandbox.supervisor import _Capture, _signame, _watch, wall_backstop

_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_EXEC_MARK = "codeeval: cannot execute"
_DETAIL = 300  # characters of a one-line detail
RESULT_FILE = ".codeeval-compile"  # a batch compiler's result for one unit (CodeevalJavac.java)
# A unit whose CPU time inside a batch reached this share of the compile limit is compiled again
# alone: alone it also pays a JVM's and a cold compiler's start (about a second), never twice
# its warm time, so only such a unit could have timed out alone
NEAR_LIMIT = 0.5
_COPY = 1 << 20


@dataclass
class _Step:
    status: int | None
    timed_out: str  # "" | "cpu" | "wall" | "kernel"
    stdout: str
    stderr: str
    seconds: float


def group_backstop(language: dict[str, Any], timeout: float, samples: int, programs: int) -> float:
    """Wall-clock seconds a group of ``samples`` samples (``programs`` distinct ones) of
    ``language`` may take: a batch compile, each program compiled alone, each sample run."""
    compile_wall = wall_backstop(float(language.get("compile_timeout", languages.COMPILE_TIMEOUT)))
    return compile_wall * (programs + (1 if programs > 1 else 0)) + wall_backstop(timeout) * samples


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


@dataclass
class _Unit:
    """Samples whose assembled files are byte-identical: compiled once."""

    files: dict[str, str]
    workdir: str  # where it compiles and each of its samples runs: the first sample's directory
    stash: str  # root's copy of what the compile left, copied into each run's fresh directory
    samples: list[int] = field(default_factory=list)  # request ids
    compiled: bool = False  # a compile verdict, or the stash, is ready
    verdict: dict[str, Any] | None = None  # the compile's verdict, when it did not compile
    output: tuple[str, str] = ("", "")  # the compile's stdout and stderr, with that verdict
    seconds: float | None = None  # compile seconds (every attempt); None: no compile step


class _Group:
    """One supervisor's samples of one problem, and what every step of theirs shares."""

    def __init__(self, language: dict[str, Any], timeout: float, limits: dict[str, Any], report_fd: int,
                 sample_uid: int | None, isolation: Isolation) -> None:
        self.runner = languages.get(str(language["name"]))
        self.tools = dict(language["tools"])
        self.compile_limit = float(language.get("compile_timeout", self.runner.compile_timeout))
        self.timeout = timeout
        self.limits = limits
        self.report_fd = report_fd
        self.sample_uid = sample_uid
        self.isolation = isolation
        self.view = fsroot.default_read_only(tool_roots(self.tools)) if isolation.scratch is not None else None
        self.step_limits = dict(limits)
        if self.runner.reserves_address_space:
            self.step_limits["address_space_bytes"] = -1  # RLIMIT_DATA still bounds what it writes

    def environment(self, workdir: str) -> dict[str, str]:
        return {**_BASE_ENV, "HOME": workdir, "TMPDIR": workdir, "PWD": workdir,
                **self.runner.environment(self.tools, workdir, self.limits)}

    def step(self, argv: list[str], env: dict[str, str], workdir: str, cpu_limit: float,
             writable: Sequence[str] | None = None) -> _Step:
        return _step(argv, env, workdir, self.step_limits, cpu_limit, self.sample_uid, self.report_fd, self.limits,
                     self.view, self.isolation.group, writable)

    def report(self, request_id: int, verdict: dict[str, Any]) -> None:
        os.write(self.report_fd, json.dumps({"id": request_id, **verdict}).encode() + b"\n")

    # -- directories ------------------------------------------------------------------------------
    def fresh(self, workdir: str) -> None:
        """An empty directory of the sample uid's at ``workdir`` (a scratch tmpfs in
        ``namespaces`` mode)."""
        os.mkdir(workdir, 0o700)
        if self.isolation.scratch is not None:
            uid = self.sample_uid if self.sample_uid is not None else os.getuid()
            fsroot.make_scratch(workdir, *self.isolation.scratch, uid)
        elif self.sample_uid is not None:
            os.chown(workdir, self.sample_uid, self.sample_uid)

    def drop(self, workdir: str) -> None:
        if self.isolation.scratch is not None:
            fsroot.drop_scratch(workdir)
        if os.path.lexists(workdir):
            proc.force_rmtree(workdir)

    def write_files(self, unit: _Unit) -> None:
        for name, text in unit.files.items():
            _write(os.path.join(unit.workdir, name), text)

    # -- compiling ----------------------------------------------------------------------------------
    def compile_batch(self, units: list[_Unit]) -> None:
        """Compile ``units`` in one step where the language has a batch compiler; each unit with
        a clean result is done, the others are left to :meth:`compile_alone`."""
        keep = int(self.limits["output_bytes"])
        argv = self.runner.batch_compile_argv(self.tools, [(u.workdir, u.files) for u in units], self.limits,
                                              RESULT_FILE)
        if argv is None:
            return
        for unit in units:
            self.fresh(unit.workdir)
            self.write_files(unit)
        first = units[0].workdir
        step = self.step(argv, self.environment(first), first, self.compile_limit, [u.workdir for u in units])
        results = [_read_result(os.path.join(u.workdir, RESULT_FILE), keep) for u in units]
        inside = sum(r[2] for r in results if r is not None)
        overhead = max(0.0, step.seconds - inside) / len(units)  # the JVM's start, shared
        for unit, result in zip(units, results):
            unit.seconds = overhead + (result[2] if result is not None else 0.0)
            _remove(os.path.join(unit.workdir, RESULT_FILE))
            if result is not None and result[0] in (0, 1) and result[1] < NEAR_LIMIT * self.compile_limit:
                text = _relative(result[3], unit.workdir)
                self.compiled(unit, _judge_compile(self.runner, _Step(result[0] << 8, "", "", text, result[2]),
                                                   self.compile_limit), ("", text))
            self.drop(unit.workdir)

    def compile_alone(self, unit: _Unit) -> None:
        """The unit's own compile step, exactly as a sample judged alone gets it."""
        self.fresh(unit.workdir)
        try:
            self.write_files(unit)
            argv = self.runner.compile_argv(self.tools, unit.workdir, unit.files, self.limits)
            verdict, output = None, ("", "")
            if argv is not None:
                step = self.step(argv, self.environment(unit.workdir), unit.workdir, self.compile_limit)
                unit.seconds = (unit.seconds or 0.0) + step.seconds
                verdict, output = _judge_compile(self.runner, step, self.compile_limit), (step.stdout, step.stderr)
            self.compiled(unit, verdict, output)
        finally:
            self.drop(unit.workdir)

    def compiled(self, unit: _Unit, verdict: dict[str, Any] | None, output: tuple[str, str]) -> None:
        """Record the unit's compile: its verdict, or (it compiled) root's copy of what it left."""
        if verdict is None:
            skip = self.runner.compile_leftovers | {languages.VERDICT_FILE, RESULT_FILE}
            _copy_tree(unit.workdir, unit.stash, None, skip=skip)
        unit.verdict, unit.output, unit.compiled = verdict, output, True

    # -- running ------------------------------------------------------------------------------------
    def run(self, unit: _Unit, request_id: int) -> None:
        """One sample: its verdict (the unit's compile verdict, or its own run's) reported."""
        seconds = None if unit.seconds is None else round(unit.seconds / len(unit.samples), 6)
        if unit.verdict is not None:
            self.report(request_id, {**unit.verdict, "stdout": unit.output[0], "stderr": unit.output[1],
                                     "duration": 0.0, "compile_duration": seconds, "stages": []})
            return
        workdir = unit.workdir
        self.fresh(workdir)
        try:
            # sources stay root's, as the supervisor wrote them; what the compile made is the sample's
            owner = None if self.sample_uid is None else (self.sample_uid, frozenset(unit.files))
            _copy_tree(unit.stash, workdir, owner)
            token = secrets.token_hex(16)
            verdict_path = os.path.join(workdir, languages.VERDICT_FILE)
            env = {**self.environment(workdir), languages.ENV_VERDICT: verdict_path, languages.ENV_TOKEN: token}
            step = self.step(self.runner.run_argv(self.tools, workdir, self.limits), env, workdir, self.timeout)
            verdict = _judge_run(self.runner, step, _read_verdict(verdict_path), token, self.timeout)
        finally:
            self.drop(workdir)
        verdict.update(stdout=step.stdout, stderr=step.stderr, duration=round(step.seconds, 6),
                       compile_duration=seconds, stages=[])
        self.report(request_id, verdict)


def supervise_group(language: dict[str, Any], tests: str, samples: list[tuple[int, str]], base: str,
                    timeout: float, limits: dict[str, Any], report_fd: int, sample_uid: int | None = None,
                    isolation: Isolation = Isolation(), batch: bool = True) -> None:
    """Judge each ``(request id, source)`` of ``samples`` (prompt + completion) with the test
    driver ``tests``; write each verdict, as soon as it is known, as one JSON line with its
    ``id`` to ``report_fd`` (and each step's pid before it runs). ``language``: {"name",
    "tools", "compile_timeout"}. Sample ``i`` runs in ``base/s<i>`` or, where an earlier
    sample's program is the same, in that sample's; ``batch``: compile distinct programs in one
    step where the language can."""
    proc.die_with_parent()
    proc.become_subreaper()
    group = _Group(language, timeout, limits, report_fd, sample_uid, isolation)
    stashes = os.path.join(base, f"g{samples[0][0]}")
    os.mkdir(stashes, 0o700)  # root's: no sample uid may enter it
    units: dict[tuple[tuple[str, str], ...], _Unit] = {}
    try:
        for request_id, source in samples:
            try:
                files = group.runner.files(source, tests)
            except languages.AssemblyError as e:
                group.report(request_id, {"outcome": "crashed", "detail": f"cannot assemble the program: {e}",
                                          "stdout": "", "stderr": "", "duration": 0.0, "compile_duration": None,
                                          "stages": []})
                continue
            key = tuple(sorted(files.items()))
            if key not in units:
                units[key] = _Unit(files, os.path.join(base, f"s{request_id}"),
                                   os.path.join(stashes, f"u{len(units)}"))
            units[key].samples.append(request_id)
        todo = list(units.values())
        if batch and len(todo) > 1:
            group.compile_batch(todo)
        for unit in todo:  # each unit's samples as soon as it is compiled: verdicts flow
            if not unit.compiled:
                group.compile_alone(unit)
            for request_id in unit.samples:
                group.run(unit, request_id)
    finally:
        proc.force_rmtree(stashes)


def _read_result(path: str, keep: int) -> tuple[int, float, float, str] | None:
    """A batch compiler's result for one unit: (exit status, CPU seconds, wall seconds, its
    diagnostics as a capture of ``keep`` bytes reads them); None when absent or malformed (the
    unit is then compiled alone). The step ran as the sample: a link or a FIFO is never followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = b""
        while len(data) < keep + 256:
            chunk = os.read(fd, keep + 256 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    head, _, body = data.partition(b"\n")
    fields = head.split()
    if len(fields) != 4 or not all(re.fullmatch(rb"-?\d{1,20}", f) for f in fields) or len(body) > keep:
        return None
    status, cpu_ns, wall_ns, dropped = (int(f) for f in fields)
    text = body.decode("utf-8", "replace")
    if dropped > 0:  # as a step's capture reads a longer output
        text += f"\n[... {dropped} more bytes not kept]"
    return status, cpu_ns / 1e9, wall_ns / 1e9, text


def _copy_tree(source: str, target: str, owner: tuple[int, frozenset[str]] | None,
               skip: frozenset[str] = frozenset()) -> None:
    """Copy the regular files and directories under ``source`` into ``target`` (made if
    missing), never following a link (links and special files are left out), modes and files'
    times kept, set-id bits not; top-level names in ``skip`` left out. ``owner``: (uid, names) gives what is
    made to uid, but the top-level ``names``; else it is the caller's (root's)."""
    if not os.path.isdir(target):
        os.mkdir(target, 0o700)
    todo = [("", source, target)]
    while todo:
        rel, src, dst = todo.pop()
        with os.scandir(src) as entries:
            listing = list(entries)
        for entry in listing:
            if not rel and entry.name in skip:
                continue
            to = os.path.join(dst, entry.name)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = stat.S_IMODE(st.st_mode) & 0o777
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(to, 0o700)
                todo.append((os.path.join(rel, entry.name), entry.path, to))
            elif stat.S_ISREG(st.st_mode):
                _copy_file(entry.path, to)
                # as the compile left it: a toolchain that compares a compiled file's time with
                # its source's (Racket's raco make) still finds it up to date
                os.utime(to, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            else:
                continue
            os.chmod(to, mode, follow_symlinks=False)
            if owner is not None and not (not rel and entry.name in owner[1]):
                os.chown(to, owner[0], owner[0], follow_symlinks=False)


def _copy_file(source: str, target: str) -> None:
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            while True:
                chunk = os.read(src, _COPY)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(dst, view):]
        finally:
            os.close(dst)
    finally:
        os.close(src)


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
          view: tuple[list[str], list[str]] | None = None, group: Any = None,
          writable: Sequence[str] | None = None) -> _Step:
    """Run ``argv`` as the sample: own session, rlimits, uid; watched like a Python sample.
    ``writable``: the directories it may write (in ``namespaces`` mode the only ones it sees
    besides the allow-list root's); ``workdir`` alone by default."""
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
                fsroot.enter_root(view[0], view[1], list(writable or [workdir]))
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
    if step.timed_out == "kernel":  # its RLIMIT_CPU, before our poll saw the time spent (a loaded machine)
        return {"outcome": "timeout", "detail": f"timed out after {timeout:g} s of CPU time (stopped by the kernel)"}
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
