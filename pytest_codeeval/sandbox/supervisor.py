"""One sample, start to finish: fork it, watch it, enforce the deadline, clean up, judge.

Runs in a process the fork server forks for this sample alone, so that a sample that kills its
parent takes down only its own supervisor (the server notices and says so). The supervisor is
a subreaper: every process the sample leaves behind, in its group or escaped from it, ends up
as the supervisor's child and is killed before the verdict is sent.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import time
from typing import Any

from pytest_codeeval.sandbox import harness, proc
from pytest_codeeval.sandbox.protocol import isolated_command

_READ = 65536


class _Capture:
    """Keeps the first ``limit`` bytes of a pipe and drains the rest so the writer never blocks."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        self.data = bytearray()
        self.dropped = 0

    def feed(self, wait_for_more: bool = True) -> bool:
        """Read once. False at end of stream, and, unless ``wait_for_more``, when nothing is
        buffered either (the pipe is non-blocking, so "nothing yet" is not the end)."""
        try:
            chunk = os.read(self.fd, _READ)
        except BlockingIOError:
            return wait_for_more
        if not chunk:
            return False
        self._keep(chunk)
        return True

    def drain(self) -> None:
        """Read what is left once every writer is dead, then close."""
        os.set_blocking(self.fd, False)
        try:
            while self.feed(wait_for_more=False):
                pass
        finally:
            os.close(self.fd)

    def _keep(self, chunk: bytes) -> None:
        room = max(0, self.limit - len(self.data))
        self.data += chunk[:room]
        self.dropped += len(chunk) - min(room, len(chunk))

    def text(self) -> str:
        out = self.data.decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[... {self.dropped} more bytes not kept]"
        return out


def supervise(
    source: str,
    checks: harness.Checks,
    workdir: str,
    timeout: float,
    limits: dict[str, Any],
    report_fd: int,
    sample_uid: int | None = None,
    bwrap: str | None = None,
) -> None:
    """Run one sample in a new directory ``workdir`` and write its verdict (one JSON line) to
    ``report_fd``; the directory is gone by then."""
    proc.die_with_parent()
    proc.become_subreaper()
    os.mkdir(workdir, 0o700)
    if sample_uid is not None:
        os.chown(workdir, sample_uid, sample_uid)
    token = secrets.token_hex(16)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    started = time.monotonic()
    if bwrap is not None:
        pid = _spawn_bwrap(bwrap, source, checks, workdir, timeout, limits, token, out_w, err_w, res_w)
    else:
        pid = os.fork()
        if pid == 0:  # the sample
            try:
                proc.die_with_parent()
                harness.setup_process(workdir, out_w, err_w, res_w, limits, timeout, sample_uid)
                harness.run(source, checks, token)
            finally:
                os._exit(70)  # only reached if the harness itself broke
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    # tell the server who to kill if this supervisor dies
    os.write(report_fd, json.dumps({"pid": pid}).encode() + b"\n")

    output_limit = int(limits["output_bytes"])
    captures = {
        out_r: _Capture(out_r, output_limit),
        err_r: _Capture(err_r, output_limit),
        res_r: _Capture(res_r, 64 * 1024),
    }
    status, timed_out = _watch(pid, captures, timeout, started + wall_backstop(timeout))
    duration = time.monotonic() - started

    # Nothing the sample started may outlive it: its group, then every orphan we inherited.
    proc.kill_group(pid)
    proc.kill_and_reap_children()
    for cap in captures.values():  # every writer is dead now: read what is left
        cap.drain()
    verdict = judge(
        token,
        captures[res_r].data.decode("utf-8", "replace"),
        status,
        timed_out,
        timeout,
    )
    verdict.update(
        stdout=captures[out_r].text(), stderr=captures[err_r].text(), duration=round(duration, 6)
    )
    proc.force_rmtree(workdir)
    os.write(report_fd, json.dumps(verdict).encode() + b"\n")




def _spawn_bwrap(bwrap: str, source: str, checks: harness.Checks, workdir: str, timeout: float,
                 limits: dict[str, Any], token: str, out_w: int, err_w: int, res_w: int) -> int:
    """Start the sample as a fresh interpreter inside bubblewrap; send it its job on fd 4."""
    job_r, job_w = os.pipe()
    argv = [
        bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--ro-bind", "/", "/", "--bind", workdir, workdir, "--proc", "/proc", "--dev", "/dev",
        "--chdir", workdir, "--clearenv",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
        "--", *isolated_command("pytest_codeeval.sandbox.harness", "bwrap_main"),
    ]
    pid = os.fork()
    if pid == 0:
        try:
            proc.die_with_parent()
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDONLY)
            for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2), (res_w, harness.RESULT_FD),
                             (job_r, harness.JOB_FD)):
                os.dup2(src, dst)
            os.closerange(harness.JOB_FD + 1, 65536)
            os.execv(bwrap, argv)
        finally:
            os._exit(71)
    os.close(job_r)
    job = {"source": source, "stages": checks.sources, "data_path": checks.data_path,
           "limits": limits, "timeout": timeout, "token": token}
    try:
        with os.fdopen(job_w, "wb") as f:
            f.write(json.dumps(job).encode())
    except BrokenPipeError:
        pass  # bwrap failed to start: its stderr and exit status tell the verdict
    return pid


_CPU_POLL = 0.05  # seconds between looks at a running sample's CPU time
_TICKS = os.sysconf("SC_CLK_TCK")


def wall_backstop(timeout: float) -> float:
    """The wall-clock limit behind the CPU-time limit: catches samples that sleep or block,
    generous enough that a CPU-bound sample on a loaded machine meets its CPU limit first."""
    return 3.0 * timeout + 1.0


def cpu_seconds(root: int) -> float:
    """CPU time used so far by ``root`` and every process descended from it (escaped sessions
    and bubblewrap's sandboxed processes included)."""
    table = proc.process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1] if pid in table else 0
        todo += children.get(pid, [])
    return total / _TICKS


def _watch(pid: int, captures: dict[int, _Capture], cpu_limit: float, wall_deadline: float) -> tuple[int | None, str]:
    """Pump output until the sample exits, spends ``cpu_limit`` CPU seconds, or reaches the
    wall-clock backstop. -> (wait status, "" | "cpu" | "wall")

    Verdicts follow the sample's own CPU time, so they do not change when other processes load
    the machine; RLIMIT_CPU in the sample is the kernel's backstop for the sample process itself.
    """
    sel = selectors.DefaultSelector()
    for fd in captures:
        sel.register(fd, selectors.EVENT_READ)
    try:
        pidfd: int | None = os.pidfd_open(pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):  # old kernel: poll waitpid instead
        pidfd = None
    next_cpu_check = time.monotonic() + min(_CPU_POLL, cpu_limit)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, ""
            now = time.monotonic()
            limit = ""
            if now >= wall_deadline:
                limit = "wall"
            elif now >= next_cpu_check:
                if cpu_seconds(pid) >= cpu_limit:
                    limit = "cpu"
                next_cpu_check = now + _CPU_POLL
            if limit:
                proc.kill_group(pid)
                _, status = os.waitpid(pid, 0)
                return status, limit
            wait = max(0.0, min(wall_deadline, next_cpu_check) - now)
            if pidfd is None:
                wait = min(wait, 0.01)
            for key, _ in sel.select(wait):
                if key.fd in captures and not captures[key.fd].feed():
                    sel.unregister(key.fd)
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)


def judge(token: str, records: str, status: int | None, timed_out: str, timeout: float) -> dict[str, Any]:
    """Turn what the sample left behind into an outcome, a truthful one-line detail, and the
    names of the check stages it was confirmed to pass."""
    lines = records.splitlines()
    suffix = f" {token}"
    stages = [line[6 : -len(suffix)] for line in lines if line.startswith("STAGE ") and line.endswith(suffix)]
    verdict = _verdict(token, lines, status, timed_out, timeout)
    verdict["stages"] = stages
    return verdict


def _verdict(token: str, lines: list[str], status: int | None, timed_out: str, timeout: float) -> dict[str, Any]:
    if f"PASS {token}" in lines:
        return {"outcome": "passed", "detail": ""}
    if timed_out == "cpu":
        return {"outcome": "timeout", "detail": f"timed out after {timeout:g} s of CPU time"}
    if timed_out == "wall":
        return {"outcome": "timeout", "detail": f"timed out after {wall_backstop(timeout):g} s of wall-clock "
                f"time, with under {timeout:g} s of CPU time (sleeping or blocked)"}
    for line in reversed(lines):  # the harness's own record; forged ones lack the token
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("token") == token:
            return {
                "outcome": record.get("outcome", "failed"),
                "detail": str(record.get("detail", "")),
                "traceback": str(record.get("traceback", "")),
            }
    if status is None:
        return {"outcome": "crashed", "detail": "the sample's process could not be waited for"}
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return {"outcome": "timeout", "detail": f"CPU time limit reached ({timeout:g} s)"}
        return {"outcome": "crashed", "detail": f"killed by signal {_signame(sig)}"}
    code = os.WEXITSTATUS(status)
    if code == 70 and not lines:
        return {"outcome": "crashed", "detail": "the sandbox harness failed inside the sample"}
    return {
        "outcome": "exited",
        "detail": f"the process exited with status {code} before the checks confirmed"
        + ("" if lines else " (nothing reached the verdict pipe)"),
    }


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
