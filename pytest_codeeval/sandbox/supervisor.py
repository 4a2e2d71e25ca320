"""One sample, start to finish: fork it, watch it, enforce the deadline, clean up, judge.

Runs in a process the fork server forks for this sample alone, so that a sample that kills its
parent takes down only its own supervisor (the server notices and says so). The supervisor is
a subreaper: every process the sample leaves behind, in its group or escaped from it, ends up
as the supervisor's child and is killed before the verdict is sent.
"""

from __future__ import annotations

import json
import os
import selectors
import resource
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

from pytest_codeeval.sandbox import fsroot, harness, isolation, proc, stub
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


@dataclass(frozen=True)
class Context:
    """What every sample of a fork server shares, handed to each supervisor by the zygote."""

    groups: dict[int, Any]  # worker slot -> cgroups.SampleGroup; empty where cgroups are unavailable
    scratch: tuple[int, int] | None  # (bytes, inodes) of the slots' tmpfs (``namespaces`` mode)
    private_view: bool  # a mount and IPC namespace per slot, its scratch as /tmp, cleared per sample
    read_search: bool  # keep CAP_DAC_READ_SEARCH (``fork`` mode as root)


def serve_slot(slot: int, sock: socket.socket, context: Context, uid: int | None = None) -> None:
    """A worker slot's supervisor, forked once by the zygote: run the slot's samples one after
    another, as the server sends them on ``sock`` (a SOCK_SEQPACKET socket: one JSON job with
    the sample's descriptors attached), and answer each with how it ended.

    It joins the slot's cgroup once, so that every sample it forks starts in the group (a fork
    inherits it for free; moving each sample in would wait for RCU grace periods). It is clean
    (forked from the zygote, it never sees a test or a program, and the sample's output goes to
    the judge, not through here), so a sample forked from it inherits nothing worth reading.
    Returns when the server closes the socket."""
    proc.die_with_parent()
    proc.become_subreaper()
    proc.set_dumpable(False)
    group = context.groups.get(slot)
    if group is not None:
        group.join()
    if context.private_view and context.scratch is not None:
        fsroot.enter_slot(*context.scratch, uid if uid is not None else 0)
        harness.prepare_samples("/tmp")  # every sample's directory: the slot's private /tmp
    else:
        isolation.prepare()
    sock.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
        except InterruptedError:
            continue
        if not data:
            proc.kill_and_reap_children()
            return
        job = json.loads(data)

        def tell(message: dict[str, Any], job_id: Any = job["id"]) -> None:
            sock.send(json.dumps({"id": job_id, **message}).encode())

        try:
            verdict = run_sample(job, fds, group, context, tell)
        except Exception as e:  # noqa: BLE001 - said, then the next sample
            proc.kill_and_reap_children()
            verdict = {"outcome": "crashed", "detail": f"the sample's supervisor failed: {type(e).__name__}: {e}"}
        sock.send(json.dumps({"id": job["id"], **verdict}).encode())


def run_sample(job: dict[str, Any], fds: list[int], group: Any, context: Context,
               tell: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """One Python sample: fork it (it serves the judge on ``fds[0]``, writes its output to
    ``fds[1]`` and ``fds[2]``, which the judge reads), watch its CPU and wall time, kill
    everything it started, renew its scratch, and say how its process ended: the label to use
    when the judge could not conclude (timeout, oom, crashed or exited)."""
    channel_fd, out_w, err_w = fds
    workdir, timeout, limits = str(job["workdir"]), float(job["timeout"]), dict(job["limits"])
    sample_uid = job.get("uid")
    if context.scratch is None:
        os.mkdir(workdir, 0o700)
        if sample_uid is not None:
            os.chown(workdir, sample_uid, sample_uid)
    if group is not None:
        group.mark()
        baseline = group.memory_bytes()
    own = _own_cpu()
    started = time.monotonic()
    if job.get("bwrap"):
        pid = _spawn_bwrap(str(job["bwrap"]), workdir, timeout, limits, out_w, err_w, channel_fd)
    else:
        pid = os.fork()
        if pid == 0:  # the sample
            try:
                proc.die_with_parent()
                harness.setup_process(workdir, out_w, err_w, channel_fd, limits, timeout, sample_uid,
                                      private_view=context.private_view, read_search=context.read_search)
                stub.main(harness.RESULT_FD)
            finally:
                os._exit(70)  # only reached if the stub itself broke
    for fd in fds:
        os.close(fd)
    tell({"pid": pid})  # whom the server kills if this supervisor stops answering
    me = os.getpid()
    if group is not None:  # the group holds every process the sample started, and this one
        def cpu() -> float:
            return group.cpu_seconds() - (_own_cpu() - own)
    else:  # every descendant of this subreaper (orphans are reparented here)
        def cpu() -> float:
            return cpu_seconds(me, exclude_root=True)
    status, timed_out, used = _watch(pid, {}, timeout, started + wall_backstop(timeout), cpu)
    duration = time.monotonic() - started
    # Nothing the sample started may outlive it: its process group, then every orphan (all of
    # them are this subreaper's descendants, so rounds of kills reach them all).
    proc.kill_group(pid)
    proc.kill_and_reap_children()
    if context.private_view:
        fsroot.clear_ipc()  # what the sample made there is freed before the next one starts
    oom = group.oom_killed() if group is not None else False
    if group is not None and baseline is not None:
        group.settle(baseline)
    verdict = _verdict(status, timed_out, timeout, used, oom)
    verdict["duration"] = round(duration, 6)
    if context.scratch is not None and not fsroot.scratch_pristine():
        # most samples never touch /tmp: the fresh tmpfs stays (a mount and an unmount, which
        # waits for an RCU grace period, saved); anything at all done to it renews it whole
        if not fsroot.renew_slot(*context.scratch, sample_uid if sample_uid is not None else 0):
            verdict["scratch_lost"] = True  # the server retires the slot
    else:
        proc.force_rmtree(workdir)
    return verdict


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _spawn_bwrap(bwrap: str, workdir: str, timeout: float, limits: dict[str, Any], out_w: int, err_w: int,
                 channel_fd: int) -> int:
    """Start the sample as a fresh interpreter inside bubblewrap, serving the judge on fd 3."""
    argv = [
        bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--ro-bind", "/", "/", "--bind", workdir, workdir, "--proc", "/proc", "--dev", "/dev",
        "--chdir", workdir, "--clearenv",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
        "--", *isolated_command("pytest_codeeval.sandbox.harness", "bwrap_main"),
        json.dumps({"limits": limits, "timeout": timeout}),
    ]
    pid = os.fork()
    if pid == 0:
        try:
            proc.die_with_parent()
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDONLY)
            for src, dst in ((devnull, 0), (out_w, 1), (err_w, 2), (channel_fd, harness.RESULT_FD)):
                os.dup2(src, dst)
            os.closerange(harness.RESULT_FD + 1, 65536)
            os.execv(bwrap, argv)
        finally:
            os._exit(71)
    return pid


KERNEL_TICK_SHARE = 0.5  # of a RLIMIT_CPU limit, the precise CPU time a kernel kill at it shows at least
_CPU_POLL = 0.05  # seconds between looks at a running sample's CPU time
_TICKS = os.sysconf("SC_CLK_TCK")


def wall_backstop(timeout: float) -> float:
    """The wall-clock limit behind the CPU-time limit: catches samples that sleep or block,
    generous enough that a CPU-bound sample on a loaded machine meets its CPU limit first."""
    return 3.0 * timeout + 1.0


def cpu_seconds(root: int, exclude_root: bool = False) -> float:
    """CPU time used so far by ``root`` and every process descended from it (escaped sessions
    and bubblewrap's sandboxed processes included). A supervisor counts its own descendants
    (``exclude_root``): orphans a sample double-forked are reparented to it, out of the
    sample's own tree, and their CPU time is the sample's too."""
    table = proc.process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if not (exclude_root and pid == root):
            total += table[pid][1] if pid in table else 0
        todo += children.get(pid, [])
    return total / _TICKS


def _watch(pid: int, captures: dict[int, _Capture], cpu_limit: float, wall_deadline: float,
           cpu: Callable[[], float] | None = None) -> tuple[int | None, str, float]:
    """Pump output until the sample exits, spends ``cpu_limit`` CPU seconds, or reaches the
    wall-clock backstop. -> (wait status, "" | "cpu" | "wall" | "kernel", the sample's CPU seconds)

    Verdicts follow the sample's own CPU time, so they do not change when other processes load
    the machine; RLIMIT_CPU in the sample is the kernel's backstop for the sample process itself.
    """
    # poll(2): no descriptor to make and close per sample, as epoll's selector would
    sel = selectors.PollSelector()
    for fd in captures:
        sel.register(fd, selectors.EVENT_READ)
    try:
        pidfd: int | None = os.pidfd_open(pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):  # old kernel: poll waitpid instead
        pidfd = None
    if cpu is None:
        me = os.getpid()

        def cpu() -> float:  # every descendant of this subreaper
            return cpu_seconds(me, exclude_root=True)

    next_cpu_check = time.monotonic() + min(_CPU_POLL, cpu_limit)
    used = 0.0
    try:
        while True:
            ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if ended is not None:
                # not reaped yet: the kernel still knows the CPU limit it ran under (the sample
                # may have lowered it), which tells a kill at that limit from any other SIGKILL;
                # read only for a signal's death (a /proc file per sample otherwise)
                limit_s = _cpu_limit_of(pid) if ended.si_code != os.CLD_EXITED else None
                _, status, usage = os.wait4(pid, 0)
                spent = max(used, usage.ru_utime + usage.ru_stime)
                killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGXCPU)
                # The kernel checks RLIMIT_CPU against tick-sampled CPU time, which on a loaded
                # machine runs well ahead of the precise time rusage reports: killed at a 1 s
                # limit, a sample showed 0.76-0.86 s under load 15 on 2 cores (1.0 s idle). So
                # "spent most of its limit" is the test; a sample that kills itself early is
                # still told apart (and either way it did not pass).
                if killed and limit_s is not None and spent >= KERNEL_TICK_SHARE * limit_s:
                    return status, "kernel", spent
                return status, "", spent
            now = time.monotonic()
            limit = ""
            if now >= wall_deadline:
                limit = "wall"
            elif now >= next_cpu_check:
                used = cpu()
                if used >= cpu_limit:
                    limit = "cpu"
                next_cpu_check = now + _CPU_POLL
            if limit:
                proc.kill_group(pid)
                _, status, usage = os.wait4(pid, 0)
                return status, limit, max(used, usage.ru_utime + usage.ru_stime)
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


def _cpu_limit_of(pid: int) -> float | None:
    """The soft RLIMIT_CPU of an exited, not yet reaped process, in seconds (None: unlimited
    or unknown)."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max cpu time"):
                    soft = line.split()[3]
                    return None if soft == "unlimited" else float(soft)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _verdict(status: int | None, timed_out: str, timeout: float, cpu: float, oom: bool = False) -> dict[str, Any]:
    """How the sample's process ended, as a label: what the run reports when the judge could not
    conclude because the sample stopped answering."""
    if timed_out == "cpu":
        return {"outcome": "timeout", "detail": f"timed out after {timeout:g} s of CPU time"}
    if timed_out == "kernel":
        return {"outcome": "timeout", "detail": f"timed out: stopped by the kernel at its CPU-time limit "
                f"({cpu:.1f} s of CPU time)"}
    if timed_out == "wall":
        # the backstop ends samples that do not compute; on a machine loaded far beyond its
        # cores (load > 3x the cores), also one starved of CPU before it used its limit
        return {"outcome": "timeout", "detail": f"timed out after {wall_backstop(timeout):g} s of wall-clock "
                f"time, having used {cpu:.2f} of its {timeout:g} s of CPU time (sleeping, blocked, or starved "
                "of CPU on a loaded machine)"}
    if status is None:
        return {"outcome": "crashed", "detail": "the sample's process could not be waited for"}
    if oom:
        return {"outcome": "oom", "detail": "killed at the memory limit (its cgroup's)"}
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        # the kernel's RLIMIT_CPU backstop (SIGXCPU, then SIGKILL) stops a sample that spent its
        # time: that is a timeout whoever stopped it
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= timeout):
            return {"outcome": "timeout", "detail": f"timed out after {timeout:g} s of CPU time (stopped by the kernel)"}
        return {"outcome": "crashed", "detail": f"killed by signal {_signame(sig)}"}
    code = os.WEXITSTATUS(status)
    if code == 70:
        return {"outcome": "crashed", "detail": "the sandbox's stub failed inside the sample"}
    return {"outcome": "exited",
            "detail": f"the process exited with status {code} before the checks confirmed"}


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
