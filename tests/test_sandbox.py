"""The sandbox against misbehaving programs, through its public API only.

Every test checks the outcome label, something in ``detail`` that shows the label is truthful,
and that the host is unharmed: the fork server survived (``starts`` stays 1) unless the test is
about its death, nothing the sample started is still running, nothing it wrote is left behind.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_codeeval.problem import Outcome, SampleResult
from pytest_codeeval.sandbox import Limits, Sandbox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

MiB = 1024 * 1024
OUTPUT_LIMIT = 16 * 1024
LIMITS = Limits(memory_bytes=1024 * MiB, output_bytes=OUTPUT_LIMIT, grace_seconds=5.0)
REPO_ROOT = Path(__file__).resolve().parents[1]

CORRECT = "def f(x):\n    return x * 2\n"
CHECKS = "assert f(2) == 4\n"
NOTE = re.compile(r"\n\[\.\.\. (\d+) more bytes not kept\]\Z")

# Pasted into samples: a process's identity, "pid:starttime", so that a recycled pid
# (pid_max may be as low as 32768) is not mistaken for a survivor.
IDENT = textwrap.dedent(
    """\
    def _ident(pid):
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return f"{pid}:{int(data[data.rfind(b')') + 2:].split()[19])}"
    """
)


def prelude(record: Path) -> str:
    """Sample code defining ``_left(ident)``: report a process that should not survive, both on
    stdout and in ``record`` (which outlives a sample whose supervisor reports nothing)."""
    return IDENT + textwrap.dedent(
        f"""\
        def _left(ident):
            print("LEFT", ident, flush=True)
            with open({str(record)!r}, "a") as f:
                f.write(ident + "\\n")
        """
    )


# -- helpers -----------------------------------------------------------------------------------
# This module runs the sandbox in "fork" mode, so that samples can report through files and pids
# the test can see; tests/test_isolation.py covers "namespaces". As root, samples run as their
# own uid: directories they must write to are opened to everyone.
@pytest.fixture(autouse=True)
def _samples_may_write_tmp_path(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)

def run(sb: Sandbox, program: str, tests: str = "pass\n", timeout: float = 3.0) -> SampleResult:
    return sb.submit(program, tests, timeout).result(timeout=timeout + 30)


def _stat_fields(pid: int | str) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:  # FileNotFoundError, or ProcessLookupError if it died while we read
        return None
    return data[data.rfind(b")") + 2 :].split()  # fields from the state (field 3) on


def _survivor(ident: str) -> str | None:
    """The state letter of the process ``ident`` names if it still exists (zombies included)."""
    pid, start = ident.split(":")
    fields = _stat_fields(pid)
    if fields is None or int(fields[19]) != int(start):
        return None  # gone, or the pid now belongs to another process
    return fields[0].decode()


def assert_all_gone(idents: list[str], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while True:
        left = {i: s for i in idents if (s := _survivor(i)) is not None}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"still present (pid:start -> state): {left}"


def children_of(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(name)
            if fields is not None and int(fields[1]) == pid:
                found.append(int(name))
    return found


def leftovers(r: SampleResult) -> list[str]:
    """The identities a sample printed as ``LEFT <pid:start>...`` lines."""
    return [i for line in r.stdout.splitlines() if line.startswith("LEFT ") for i in line.split()[1:]]


def sandbox_dirs(where: Path) -> list[str]:
    return sorted(glob.glob(os.path.join(where, "codeeval-sandbox-*")))


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(workers=2, limits=LIMITS, isolation="fork")
    sandbox.start()
    pid = sandbox.pid
    assert pid is not None
    yield sandbox
    sandbox.close()
    assert _stat_fields(pid) is None, "the fork server outlived close()"


@pytest.fixture(autouse=True)
def _server_unharmed(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the shared sandbox: same server, alive, with no child left."""
    if "sb" not in request.fixturenames:
        yield
        return
    sandbox: Sandbox = request.getfixturevalue("sb")
    pid = sandbox.pid
    yield
    assert sandbox.starts == 1, "the fork server died and was restarted"
    assert sandbox.pid == pid
    assert pid is not None
    fields = _stat_fields(pid)
    assert fields is not None and fields[0] not in (b"Z", b"X"), "the fork server is dead"
    # its lasting children: the zygote and one judge per slot; the zygote's, one supervisor per
    # slot; and nothing below any of them (no sample, nothing a sample started)
    left = children_of(pid)
    assert len(left) <= 1 + sandbox.workers, "the fork server still has children after every verdict"
    below = [grandchild for child in left for grandchild in children_of(child)]
    assert len(below) <= sandbox.workers, "more than one supervisor per slot"
    assert all(children_of(p) == [] for p in below), "a sample outlived its verdict"


# -- 1. plain verdicts -------------------------------------------------------------------------
def test_correct_program_passes(sb: Sandbox) -> None:
    r = run(sb, CORRECT, CHECKS)
    assert r.outcome is Outcome.PASSED, r
    assert r.detail == "" and r.traceback == ""


def test_submit_many_answers_each_program_in_order(sb: Sandbox) -> None:
    """A problem's programs go to the server in one write; each future is its own program's."""
    programs = [CORRECT, "def f(x):\n    return 0\n", "def f(x:\n", CORRECT, "raise SystemExit(3)\n"] * 3
    futures = sb.submit_many(programs, CHECKS, 3.0)
    assert [f.result(timeout=60).outcome for f in futures] == [
        Outcome.PASSED, Outcome.FAILED, Outcome.SYNTAX_ERROR, Outcome.PASSED, Outcome.FAILED] * 3
    assert sb.submit_many([], CHECKS, 3.0) == []


def test_wrong_program_fails_on_the_assert_line(sb: Sandbox) -> None:
    r = run(sb, "def f(x):\n    return x + 1\n", "assert f(1) == 2\nassert f(2) == 4\n")
    assert r.outcome is Outcome.FAILED, r
    assert r.detail.startswith("AssertionError"), r.detail
    assert "<tests> line 2: assert f(2) == 4" in r.detail
    assert "assert f(2) == 4" in r.traceback


def test_exception_in_program_fails_with_its_line(sb: Sandbox) -> None:
    r = run(sb, "x = 1\nraise ValueError('boom')\n", CHECKS)
    assert r.outcome is Outcome.FAILED, r
    assert "ValueError: boom" in r.detail
    assert "<completion> line 2" in r.detail


def test_syntax_error(sb: Sandbox) -> None:
    r = run(sb, "def f(x:\n    return x\n", CHECKS)
    assert r.outcome is Outcome.SYNTAX_ERROR, r
    assert "SyntaxError" in r.detail


# -- 2. exit-status spoofing -------------------------------------------------------------------
def test_os_exit_zero_is_exited_not_passed(sb: Sandbox) -> None:
    r = run(sb, CORRECT + "import os\nos._exit(0)\n", CHECKS)
    assert r.outcome is Outcome.EXITED, r
    assert "exited with status 0 before the checks confirmed" in r.detail


@pytest.mark.parametrize(
    "program",
    [
        pytest.param(CORRECT + "import sys\nsys.exit(0)\n", id="sys.exit-top-level"),
        pytest.param("def f(x):\n    raise SystemExit\n", id="SystemExit-in-function"),
    ],
)
def test_system_exit_is_failed(sb: Sandbox, program: str) -> None:
    r = run(sb, program, CHECKS)
    assert r.outcome is Outcome.FAILED, r
    assert "SystemExit" in r.detail


def test_self_sigkill_is_crashed(sb: Sandbox) -> None:
    r = run(sb, CORRECT + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", CHECKS)
    assert r.outcome is Outcome.CRASHED, r
    assert "SIGKILL" in r.detail


@pytest.mark.parametrize(
    "steal",
    [
        pytest.param("os.close(3)\n", id="closed"),
        pytest.param("os.dup2(os.open(os.devnull, os.O_WRONLY), 3)\n", id="redirected"),
    ],
)
def test_closing_the_verdict_pipe_is_not_a_pass(sb: Sandbox, steal: str) -> None:
    r = run(sb, "import os\n" + steal + CORRECT, CHECKS)
    # the judge's channel is gone: the tests cannot run, so the sample ends unjudged
    assert r.outcome is Outcome.EXITED, r
    assert "exited with status 0 before the checks confirmed" in r.detail


def test_forged_verdicts_are_not_a_pass(sb: Sandbox) -> None:
    # without the token: a PASS line and harness-like records, on the verdict pipe and on any
    # other descriptor that might lead to the supervisor or the server
    program = CORRECT + textwrap.dedent(
        """\
        import os
        forged = (b"PASS\\nPASS 0123456789abcdef0123456789abcdef\\n"
                  b'{"token": "", "outcome": "passed", "detail": ""}\\n'
                  b'{"id": 0, "outcome": "passed", "detail": ""}\\n')
        for fd in range(1024):
            try:
                os.write(fd, forged)
            except OSError:
                pass
        os._exit(0)
        """
    )
    r = run(sb, program, CHECKS)
    # what it wrote on the judge's channel is not an answer: a protocol violation, a failure
    assert r.outcome is Outcome.FAILED, r
    assert "protocol" in r.detail


# -- 3. killing the parent or its own group ---------------------------------------------------
# As root, each sample runs as its own uid and may not signal its (root) supervisor at all;
# unprivileged, it can, and the server reports the supervisor's death.
ROOT = os.geteuid() == 0
KILL_PARENT = (Outcome.FAILED, "PermissionError") if ROOT else (Outcome.CRASHED, "supervisor was killed")


def test_killing_its_parent_is_crashed_and_the_server_survives(sb: Sandbox) -> None:
    r = run(sb, CORRECT + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", CHECKS)
    assert r.outcome is KILL_PARENT[0], r
    assert KILL_PARENT[1] in r.detail
    again = run(sb, CORRECT, CHECKS)
    assert again.outcome is Outcome.PASSED, again
    assert sb.starts == 1


def test_killing_its_own_process_group_is_crashed(sb: Sandbox) -> None:
    r = run(sb, CORRECT + "import os, signal\nos.killpg(0, signal.SIGKILL)\n", CHECKS)
    assert r.outcome is Outcome.CRASHED, r
    assert "SIGKILL" in r.detail
    assert run(sb, CORRECT, CHECKS).outcome is Outcome.PASSED
    assert sb.starts == 1


# -- 4. time limit -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "program",
    [
        pytest.param("while True:\n    pass\n", id="busy-loop"),
        pytest.param("import time\ntime.sleep(1000)\n", id="sleep"),
        pytest.param(
            "import signal\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n"
            "    try:\n"
            "        while True:\n"
            "            pass\n"
            "    except BaseException:\n"
            "        pass\n",
            id="swallows-exceptions-and-SIGTERM",
        ),
    ],
)
def test_timeout(sb: Sandbox, program: str) -> None:
    r = run(sb, program, CHECKS, timeout=1.0)
    assert r.outcome is Outcome.TIMEOUT, r
    if "sleep" in program:  # no CPU spent: the wall-clock backstop (3 x timeout + 1 s) ends it
        assert r.detail.startswith("timed out after 4 s of wall-clock time"), r.detail
        assert 4.0 <= r.duration < 4.5, r.duration
    else:  # CPU-bound: the CPU-time limit ends it
        assert r.detail == "timed out after 1 s of CPU time"
        assert 1.0 <= r.duration < 1.5, r.duration


# -- 5. nothing left running -------------------------------------------------------------------
LEFTOVER_PROGRAMS = {
    "forked-child": """\
        import os, time
        pid = os.fork()
        if pid == 0:
            time.sleep(1000)
            os._exit(0)
        _left(_ident(pid))
        """,
    "double-fork-setsid-daemon": """\
        import os, time
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(w, _ident(os.getpid()).encode() + b"\\n")
                time.sleep(1000)
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        _left(os.read(r, 100).decode().strip())
        """,
    "popen-new-session": """\
        import subprocess
        p = subprocess.Popen(["sleep", "1000"], start_new_session=True)
        _left(_ident(p.pid))
        """,
}
ENDINGS = {
    "returns": (CORRECT, Outcome.PASSED, ""),
    "loops": (CORRECT + "while True:\n    pass\n", Outcome.TIMEOUT, "timed out"),
    "kills-its-parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", *KILL_PARENT),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("leftover", list(LEFTOVER_PROGRAMS))
def test_nothing_the_sample_started_survives(
    sb: Sandbox, tmp_path: Path, leftover: str, ending: str
) -> None:
    tail, outcome, detail = ENDINGS[ending]
    record = tmp_path / "left"
    program = prelude(record) + textwrap.dedent(LEFTOVER_PROGRAMS[leftover]) + tail
    r = run(sb, program, CHECKS, timeout=1.0)
    assert r.outcome is outcome, r
    assert detail in r.detail
    idents = record.read_text().split()
    assert len(idents) == 1
    if ending != "kills-its-parent" or ROOT:  # a dead supervisor reports no output
        assert leftovers(r) == idents
    assert_all_gone(idents)


# -- 6. fork flood -----------------------------------------------------------------------------
FORK_FLOOD = {
    "flat-200": """\
        import os, time
        idents = []
        for _ in range(200):
            pid = os.fork()
            if pid == 0:
                time.sleep(1000)
                os._exit(0)
            idents.append(_ident(pid))
        for i in idents:
            _left(i)
        """,
    # every process forks again, 7 times: 127 descendants in a tree, each reporting itself
    "tree-128": """\
        import os, time
        root = os.getpid()
        r, w = os.pipe()
        for _ in range(7):
            os.fork()
        if os.getpid() != root:
            os.write(w, (_ident(os.getpid()) + "\\n").encode())
            time.sleep(1000)
            os._exit(0)
        os.close(w)
        data = b""
        while data.count(b"\\n") < 127:
            data += os.read(r, 65536)
        for i in data.decode().split():
            _left(i)
        """,
}


@pytest.mark.parametrize("ending", ["returns", "loops"])
@pytest.mark.parametrize("flood", list(FORK_FLOOD))
def test_fork_flood_leaves_nothing(sb: Sandbox, tmp_path: Path, flood: str, ending: str) -> None:
    tail, outcome, _ = ENDINGS[ending]
    record = tmp_path / "left"
    program = prelude(record) + textwrap.dedent(FORK_FLOOD[flood]) + tail
    r = run(sb, program, CHECKS, timeout=2.0)
    assert r.outcome is outcome, r
    idents = record.read_text().split()
    assert len(idents) == (200 if flood == "flat-200" else 127)
    assert leftovers(r) == idents
    assert_all_gone(idents)


# -- 7. memory and output ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "program",
    [
        pytest.param("x = bytearray(10 ** 10)\n", id="one-huge-allocation"),
        pytest.param("hog = []\nwhile True:\n    hog.append(' ' * 10 ** 6)\n", id="growing-list"),
    ],
)
def test_memory_bomb_is_oom(program: str) -> None:
    with Sandbox(workers=1, limits=Limits(memory_bytes=512 * MiB), isolation="fork") as small:
        r = run(small, program, CHECKS, timeout=10.0)
        assert r.outcome is Outcome.OOM, r
        assert "MemoryError" in r.detail
        assert run(small, CORRECT, CHECKS).outcome is Outcome.PASSED
        assert small.starts == 1


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_bomb_times_out_with_bounded_capture(sb: Sandbox, stream: str) -> None:
    r = run(sb, f"import sys\nwhile True:\n    print('x' * 100, file=sys.{stream})\n", timeout=1.0)
    assert r.outcome is Outcome.TIMEOUT, r
    assert "timed out" in r.detail
    captured = getattr(r, stream)
    note = NOTE.search(captured)
    assert note is not None and int(note.group(1)) > 0, captured[-200:]
    assert captured[: note.start()] == ("x" * 100 + "\n") * (OUTPUT_LIMIT // 101) + "x" * (
        OUTPUT_LIMIT % 101
    )
    assert len(captured) <= OUTPUT_LIMIT + 64


def test_large_finite_output_is_truncated_with_a_note(sb: Sandbox) -> None:
    size = 100_000
    r = run(sb, f"print('x' * {size})\n" + CORRECT, CHECKS)
    assert r.outcome is Outcome.PASSED, r
    assert r.stdout == "x" * OUTPUT_LIMIT + f"\n[... {size + 1 - OUTPUT_LIMIT} more bytes not kept]"


# -- 8. crashes --------------------------------------------------------------------------------
def test_segfault_is_crashed(sb: Sandbox) -> None:
    r = run(sb, CORRECT + "import ctypes\nctypes.string_at(0)\n", CHECKS)
    assert r.outcome is Outcome.CRASHED, r
    assert "SIGSEGV" in r.detail


@pytest.mark.parametrize(
    "recursion",
    [
        pytest.param("def r(n):\n    return r(n + 1) + 1\nr(0)\n", id="python-frames"),
        pytest.param(
            "class A:\n    def __repr__(self):\n        return repr(self)\nrepr(A())\n",
            id="through-C",
        ),
    ],
)
def test_stack_overflow_is_crashed_or_recursion_error(sb: Sandbox, recursion: str) -> None:
    # 10**6 Python frames take ~1.5 s to build: the verdict must follow soon after, not time out
    r = run(sb, "import sys\nsys.setrecursionlimit(10 ** 6)\n" + recursion, CHECKS, timeout=8.0)
    if r.outcome is Outcome.CRASHED:
        assert "SIGSEGV" in r.detail
    else:
        assert r.outcome is Outcome.FAILED, r
        assert r.detail.startswith("RecursionError"), r.detail


# -- 9. stdin ----------------------------------------------------------------------------------
def test_stdin_is_empty_and_never_blocks(sb: Sandbox) -> None:
    r = run(sb, "import sys\ndata = sys.stdin.read()\n" + CORRECT, "assert data == ''\n" + CHECKS)
    assert r.outcome is Outcome.PASSED, r
    assert r.duration < 1.0
    r = run(sb, "input()\n" + CORRECT, CHECKS)
    assert r.outcome is Outcome.FAILED, r
    assert "EOFError" in r.detail


# -- 10. files ---------------------------------------------------------------------------------
def test_fresh_working_directory_removed_afterwards(private_tmp: Path) -> None:
    program = (
        "import os, tempfile\n"
        "print(os.getcwd())\n"
        "print(tempfile.gettempdir())\n"
        "open('out.txt', 'w').write('hello')\n"
        "fd, path = tempfile.mkstemp()\n"
        "print(path)\n" + CORRECT
    )
    with Sandbox(workers=2, limits=LIMITS, isolation="fork") as fresh:
        first = run(fresh, program, CHECKS)
        second = run(fresh, program, CHECKS)
        for r in (first, second):
            assert r.outcome is Outcome.PASSED, r
        cwds = [r.stdout.splitlines()[0] for r in (first, second)]
        assert cwds[0] != cwds[1]
        for r, cwd in zip((first, second), cwds):
            assert os.path.basename(os.path.dirname(cwd)).startswith("codeeval-sandbox-")
            tmp, made = r.stdout.splitlines()[1:3]
            assert tmp == cwd, "tempfile must write into the sample's own directory"
            assert made.startswith(cwd + os.sep)
            assert not os.path.exists(cwd), f"{cwd} outlived its sample"
        base = os.path.dirname(cwds[0])
        assert os.path.isdir(base)  # the server's own directory lives as long as the server
        assert sandbox_dirs(private_tmp) == [base]
    assert not os.path.exists(base), f"{base} outlived the sandbox"
    assert sandbox_dirs(private_tmp) == []


# -- 11. environment ---------------------------------------------------------------------------
def test_parent_environment_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEEVAL_TEST_SECRET", "s3cr3t")
    with Sandbox(workers=1, limits=LIMITS, isolation="fork") as fresh:
        r = run(fresh, "import os\nprint(sorted(os.environ.items()))\n" + CORRECT, CHECKS)
    assert r.outcome is Outcome.PASSED, r
    assert "PATH" in r.stdout  # the print did happen
    assert "s3cr3t" not in r.stdout
    assert "CODEEVAL_TEST_SECRET" not in r.stdout
    names = set(re.findall(r"\('(\w+)', ", r.stdout))
    assert names <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PWD"}, names


# -- 12. asserts are never optimized away --------------------------------------------------------
@pytest.mark.parametrize(
    "program,tests",
    [
        pytest.param(CORRECT, "assert False\n", id="in-checks"),
        pytest.param("def f(x):\n    assert False\n    return x * 2\n", CHECKS, id="in-program"),
    ],
)
def test_assert_false_fails(sb: Sandbox, program: str, tests: str) -> None:
    r = run(sb, program, tests)
    assert r.outcome is Outcome.FAILED, r
    assert r.detail.startswith("AssertionError"), r.detail
    assert "assert False" in r.detail


def test_assert_false_fails_when_host_runs_with_O() -> None:
    script = textwrap.dedent(
        f"""\
        import sys
        from pytest_codeeval.sandbox import Limits, Sandbox
        print("optimize", sys.flags.optimize)
        with Sandbox(workers=1, limits=Limits(memory_bytes={LIMITS.memory_bytes}), isolation="fork") as sb:
            for program, tests in [({CORRECT!r}, "assert False\\n"),
                                   ("def f(x):\\n    assert False\\n", "f(1)\\n")]:
                print("outcome", sb.submit(program, tests, 5.0).result(timeout=60).outcome.value)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-O", "-c", script],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["optimize 1", "outcome failed", "outcome failed"]


def test_compile_program_keeps_asserts_in_an_optimized_interpreter() -> None:
    """The server and harness compile through compile_program; run it under -O itself."""
    script = textwrap.dedent(
        """\
        import sys
        from pytest_codeeval.sandbox.harness import compile_program
        assert sys.flags.optimize == 1
        try:
            exec(compile_program("assert False, 'kept'\\n", "<tests>"), {})
        except AssertionError as e:
            print("raised", e)
        else:
            print("assert stripped")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "raised kept"


# -- 13. parallelism ---------------------------------------------------------------------------
def test_workers_run_two_at_a_time(sb: Sandbox) -> None:
    started = time.monotonic()
    futures = [sb.submit("import time\ntime.sleep(0.5)\n" + CORRECT, CHECKS, 5.0) for _ in range(4)]
    results = [f.result(timeout=30) for f in futures]
    elapsed = time.monotonic() - started
    assert all(r.outcome is Outcome.PASSED for r in results), results
    assert all(r.duration >= 0.5 for r in results)
    assert 0.9 < elapsed < 1.8, elapsed


# -- 14. the server's death ------------------------------------------------------------------------
def test_server_killed_is_restarted(tmp_path: Path, private_tmp: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir(mode=0o777)
    pids.chmod(0o777)
    hang = IDENT + (
        "import os, time\n"
        "with open(os.path.join({d!r}, str(os.getpid())), 'w') as f:\n"
        "    f.write(_ident(os.getpid()) + ' ' + os.getcwd())\n"
        "time.sleep(60)\n"
    ).format(d=str(pids))
    with Sandbox(workers=2, limits=LIMITS, isolation="fork") as fresh:
        fresh.start()
        old_pid = fresh.pid
        assert old_pid is not None and fresh.starts == 1
        futures = [fresh.submit(hang, CHECKS, 60.0) for _ in range(3)]  # 2 running, 1 queued
        deadline = time.monotonic() + 10
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        running = [p.read_text().split() for p in pids.iterdir()]
        assert len(running) == 2
        os.kill(old_pid, signal.SIGKILL)
        for f in futures:
            r = f.result(timeout=30)
            assert r.outcome is Outcome.CRASHED, r
            assert "sandbox server stopped" in r.detail
        # the supervisors and their samples die with the server
        assert_all_gone([ident for ident, _ in running])
        # and the dead server's temporary directory does not stay behind
        for _, cwd in running:
            assert not os.path.exists(os.path.dirname(cwd)), cwd
        assert sandbox_dirs(private_tmp) == []
        r = run(fresh, CORRECT, CHECKS)
        assert r.outcome is Outcome.PASSED, r
        assert fresh.starts == 2
        assert fresh.pid not in (None, old_pid)
    assert sandbox_dirs(private_tmp) == []
