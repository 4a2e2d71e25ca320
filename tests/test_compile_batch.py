"""--codeeval-compile-batch: a compiled language's samples of a problem judged as a group (each
distinct program compiled once, Java's in one javac, each sample run alone) get exactly the
verdicts of judging each sample on its own (``off``).

End to end through pytester, as tests/test_multiple.py runs MultiPL-E, for Java, C++ and Go: the
same generations judged with ``--codeeval-compile-batch=off`` and with the default give the same
results file and, sample by sample, the same label and detail, on the solved set, on problems
whose data is broken (two per prompt set; all of them with CODEEVAL_COMPILE_BATCH_FULL=1), and
on a mix (right, wrong, non-compiling, timing out, exact duplicates, and a sample that looks for
its siblings' directories and must find none). Below that, the group supervisor itself: a
Java unit whose batch result is not clean is compiled again alone, with the same verdict.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval.benchmarks import multiple
from pytest_codeeval.runner import Runner
from pytest_codeeval.sandbox import compiled, languages
from tests.conftest import write_jsonl
from tests.test_multiple import GCD, KINDS, KNOWN_BROKEN, WRONG, multiple_dirs, need, records, solved  # noqa: F401

FULL = os.environ.get("CODEEVAL_COMPILE_BATCH_FULL") == "1"
LANGS = ("java", "cpp", "go")
FOUND = "codeeval-sibling-found"
# A wrong answer that first lists the directory holding its own and tries to write into, and
# read, every other entry there: a sibling sample's directory or the group's compiled programs
# would be found there (where the sandbox puts them), and named on stderr. (Go's prompt imports
# no package that reads a directory.)
SNOOP = {
    "cpp": f"""
    std::error_code codeeval_ec;
    std::filesystem::path codeeval_here = std::filesystem::current_path(codeeval_ec);
    for (auto it = std::filesystem::directory_iterator(codeeval_here.parent_path(), codeeval_ec);
         !codeeval_ec && it != std::filesystem::directory_iterator(); it.increment(codeeval_ec)) {{
        if (it->path() == codeeval_here) continue;
        std::ofstream(it->path() / "planted") << "x";
        std::fprintf(stderr, "{FOUND} %s\\n", it->path().filename().c_str());
    }}
    return a + b;""",
    "java": f"""
        java.io.File here = new java.io.File(System.getProperty("user.dir")).getAbsoluteFile();
        java.io.File[] all = here.getParentFile().listFiles();
        if (all != null) {{
            for (java.io.File f : all) {{
                if (f.equals(here)) continue;
                try {{ new java.io.FileOutputStream(new java.io.File(f, "planted")).close(); }} catch (Exception e) {{ }}
                System.err.println("{FOUND} " + f.getName() + " " + java.util.Arrays.toString(f.list()));
            }}
        }}
        return a + b;""",
}


def mixed(lang: str) -> list[str]:
    """GCD's completions: right, each wrong kind of tests/test_multiple.py (wrong, non-compiling,
    timing out, exiting, crashing), a second non-compiling one, exact duplicates of the right,
    the wrong and the non-compiling ones, and the snooping sample."""
    right = next(r["completion"] for r in solved(lang) if r["task_id"] == GCD)
    kinds = [c for c, _, _ in KINDS[lang]]
    broken = {"cpp": "\n    return b +;", "java": "\n        return b +;", "go": "\n    return b +\n}\n"}[lang]
    extra = [SNOOP[lang]] if lang in SNOOP else []
    return [right, *kinds, broken, right, kinds[0], kinds[1], *extra, right]


def broken_problems(lang: str) -> dict[str, list[str]]:
    """Benchmark -> known-broken problems to judge: two per prompt set (all with FULL)."""
    chosen = {}
    for source in multiple.SOURCES:
        names = list(KNOWN_BROKEN.get(f"{source}-{lang}", {}))
        if names:
            chosen[f"{source}-{lang}"] = names if FULL else names[:2]
    return chosen


def judge(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, lang: str, mode: str) -> tuple[dict, dict]:
    """One run of the solved set, the broken problems and the mix with ``mode``: (the results
    file's problems, {(benchmark, task): [(label, detail, stderr), ...]})."""
    seen: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    evaluate = Runner.evaluate

    def recording(self: Runner, problem: Any, programs: tuple[str, ...]) -> Any:
        result = evaluate(self, problem, programs)
        seen[(problem.benchmark, problem.task_id)] = [(r.outcome.value, r.detail, r.stderr) for r in result.results]
        return result

    monkeypatch.setattr(Runner, "evaluate", recording)
    rows: dict[str, list[dict[str, str]]] = {f"{s}-{lang}": [] for s in multiple.SOURCES}
    for r in solved(lang):
        if r["task_id"] != GCD:  # each twice: a group of two identical programs
            rows[r["benchmark"]] += [{"task_id": r["task_id"], "completion": r["completion"]}] * 2
    for bench, names in broken_problems(lang).items():
        rows[bench] += [{"task_id": n, "completion": c} for n in names for c in (WRONG[lang], WRONG[lang])]
    args = []
    for bench, bench_rows in rows.items():
        write_jsonl(pytester.path / f"{bench}.jsonl", bench_rows)
        args += [f"benchmarks/{bench}", f"--codeeval-generations={bench}={bench}.jsonl"]
    # the mix, a file of its own (a file holds the same number of samples for every problem)
    write_jsonl(pytester.path / "mix.jsonl", [{"task_id": GCD, "completion": c} for c in mixed(lang)])
    args.append(f"--codeeval-generations=humaneval-{lang}=mix.jsonl")
    out = f"{mode}.json"
    pytester.runpytest(*args, f"--codeeval-compile-batch={mode}", f"--codeeval-json={out}", "--codeeval-timeout=1",
                       "--codeeval-k=1", "-p", "no:cacheprovider", "-q")
    monkeypatch.setattr(Runner, "evaluate", evaluate)
    doc = json.loads((pytester.path / out).read_text())
    return {b: {t: p["outcomes"] for t, p in ps.items()} for b, ps in doc["problems"].items()}, seen


TIMEOUT = re.compile(r"timed out after 1 s of CPU time( \(stopped by the kernel\))?|timed out after 4 s of wall-clock time, with under 1 s of CPU "
                     r"time \(sleeping, blocked, or starved of CPU on a loaded machine\)")


def details(verdicts: dict[tuple[str, str], list[tuple[str, str, str]]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(label, detail) of every sample; a timeout's detail (which limit came first: our CPU poll,
    the kernel's RLIMIT_CPU or the wall backstop, depends on the machine's load, whoever judges)
    only checked to be one of those."""
    return {k: [(label, "either limit" if label == "timeout" and TIMEOUT.fullmatch(detail) else detail)
                for label, detail, _ in v] for k, v in verdicts.items()}


@pytest.mark.parametrize("lang", LANGS)
def test_batched_verdicts_are_the_one_at_a_time_verdicts(pytester: pytest.Pytester, multiple_dirs: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch, lang: str) -> None:
    need(lang)
    off_file, off = judge(pytester, monkeypatch, lang, "off")
    auto_file, auto = judge(pytester, monkeypatch, lang, "auto")
    assert auto_file == off_file
    assert details(auto) == details(off)
    # the runs judged what was asked, with the labels each kind gets (not a vacuous equality)
    gcd = [label for label, _, _ in auto[(f"humaneval-{lang}", GCD)]]
    kinds = [k[1] for k in KINDS[lang]]
    assert gcd == ["passed", *kinds, "compile_error", "passed", kinds[0], kinds[1], *(["failed"] * (lang in SNOOP)),
                   "passed"]
    for (bench, task), verdicts in auto.items():
        if task != GCD and (bench, task) not in {(b, n) for b, ns in broken_problems(lang).items() for n in ns}:
            assert [v[0] for v in verdicts] == ["passed", "passed"], (bench, task, verdicts)
    for bench, names in broken_problems(lang).items():
        for name in names:
            assert [v[0] for v in auto[(bench, name)]] == [KNOWN_BROKEN[bench][name]] * 2, (bench, name)
    # the snooping sample saw no sibling, batched or not
    for verdicts in (auto, off):
        assert not any(FOUND in stderr for _, _, stderr in verdicts[(f"humaneval-{lang}", GCD)]), verdicts


# -- the group supervisor itself ---------------------------------------------------------------------
def supervise(tmp_path: Path, lang: str, sources: list[str], tests: str, tools: dict[str, str],
              batch: bool) -> list[dict[str, Any]]:
    """Run :func:`compiled.supervise_group` in a child process (it becomes a subreaper), without
    isolation beyond the process tree: the verdicts it reports, in request order."""
    base = tmp_path / f"base-{secrets.token_hex(4)}"
    base.mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            limits = {"memory_bytes": 4096 << 20, "output_bytes": 65536, "file_bytes": 64 << 20, "open_files": 256,
                      "processes": 4096}
            compiled.supervise_group({"name": lang, "tools": tools, "compile_timeout": languages.COMPILE_TIMEOUT},
                                     tests, list(enumerate(sources)), str(base), 5.0, limits, w, batch=batch)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert list(base.iterdir()) == []  # every directory removed, the group's stash too
    verdicts = [v for v in map(json.loads, data.splitlines()) if set(v) != {"pid"}]  # not a step's pid
    return [v for _, v in sorted(((v.pop("id"), v) for v in verdicts), key=lambda iv: iv[0])]


def labels(verdicts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(v["outcome"], v["detail"]) for v in verdicts]


@pytest.fixture
def java_group(data_dir: Path) -> tuple[list[str], str, dict[str, str]]:
    need("java")
    tools = languages.toolchain("java")
    if "javac_batch" not in tools:
        pytest.skip("the batch javac could not be prepared here")
    from pytest_codeeval.benchmarks import load

    problem = load("humaneval-java", data_dir).by_task_id[GCD]
    right = next(r["completion"] for r in solved("java") if r["task_id"] == GCD)
    sources = [problem.program_from_completion(c) for c in (right, *(k[0] for k in KINDS["java"][:2]), right,
                                                            "\n        return b +;")]
    return sources, problem.tests, tools


def test_a_java_unit_without_a_clean_batch_result_is_compiled_alone(tmp_path: Path, java_group: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Units whose batch result is missing (the batch JVM did not run) or near the compile limit
    are compiled again alone: the verdicts are those of compiling each alone."""
    sources, tests, tools = java_group
    alone = supervise(tmp_path, "java", sources, tests, tools, batch=False)
    assert [v["outcome"] for v in alone] == ["passed", "failed", "compile_error", "passed", "compile_error"]
    assert labels(supervise(tmp_path, "java", sources, tests, tools, batch=True)) == labels(alone)
    # no result at all: the batch compiler is not there
    missing = {**tools, "javac_batch": str(tmp_path / "no-such.jar")}
    assert labels(supervise(tmp_path, "java", sources, tests, missing, batch=True)) == labels(alone)
    # every unit "near the limit": each compiled again alone, its batch time counted too
    monkeypatch.setattr(compiled, "NEAR_LIMIT", 0.0)
    again = supervise(tmp_path, "java", sources, tests, tools, batch=True)
    assert labels(again) == labels(alone)


def test_identical_programs_compile_once_and_each_sample_runs_alone(tmp_path: Path, data_dir: Path) -> None:
    """Four identical C++ samples and a distinct one in one group: two compiles (the four's
    seconds shared among them), five runs, each with its own token: a sample that writes a PASS
    line without its run's token does not pass, and its neighbours still do."""
    need("cpp")
    from pytest_codeeval.benchmarks import load

    problem = load("humaneval-cpp", data_dir).by_task_id[GCD]
    right = next(r["completion"] for r in solved("cpp") if r["task_id"] == GCD)
    forged = ('\n    { std::FILE* f = std::fopen(".codeeval-verdict", "w"); std::fputs("PASS '
              + "0" * 32 + '\\n", f); std::fclose(f); std::exit(0); }\n    return a;')
    sources = [problem.program_from_completion(c) for c in (right, right, forged, right, right)]
    verdicts = supervise(tmp_path, "cpp", sources, problem.tests, languages.toolchain("cpp"), batch=True)
    assert [v["outcome"] for v in verdicts] == ["passed", "passed", "exited", "passed", "passed"]
    shared = {v["compile_duration"] for i, v in enumerate(verdicts) if i != 2}
    assert len(shared) == 1 and shared.pop() > 0  # one compile, its time divided among its four samples
    assert all(v["duration"] > 0 for v in verdicts)  # and four runs


def test_read_result_refuses_what_a_batch_step_could_forge(tmp_path: Path) -> None:
    path = tmp_path / "r"
    for text in (b"", b"0 1 2\n", b"0 1 2 x\n", b"0 1 2 3 4\n", b"1 2 3 0\n" + b"x" * 20):
        path.write_bytes(text)
        assert compiled._read_result(str(path), 10) is None, text
    path.write_bytes(b"1 2000000000 3000000000 5\nProblem.java:3: error: x\n")
    assert compiled._read_result(str(path), 100) == (1, 2.0, 3.0, "Problem.java:3: error: x\n\n[... 5 more bytes not kept]")
    link = tmp_path / "link"
    link.symlink_to(path)
    assert compiled._read_result(str(link), 100) is None
    os.mkfifo(tmp_path / "fifo")
    assert compiled._read_result(str(tmp_path / "fifo"), 100) is None


def test_copy_tree_copies_files_and_directories_only(tmp_path: Path) -> None:
    source, target = tmp_path / "s", tmp_path / "t"
    (source / "classes" / "deep").mkdir(parents=True)
    (source / "classes" / "deep" / "A.class").write_bytes(b"\xca\xfe")
    (source / "solution").write_bytes(b"elf")
    (source / "solution").chmod(0o4755)
    os.utime(source / "solution", ns=(1_000_000_000, 2_000_000_000))  # a compiled file's time, kept
    (source / "link").symlink_to("/etc/passwd")
    (source / ".gocache").mkdir()
    os.mkfifo(source / "fifo")
    compiled._copy_tree(str(source), str(target), None, skip=frozenset({".gocache"}))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == \
        ["classes", "classes/deep", "classes/deep/A.class", "solution"]
    assert (target / "classes" / "deep" / "A.class").read_bytes() == b"\xca\xfe"
    assert (target / "solution").stat().st_mode & 0o7777 == 0o755  # no set-id bit
    assert (target / "solution").stat().st_mtime_ns == 2_000_000_000


def test_the_option_and_its_ini_twin(pytester: pytest.Pytester) -> None:
    from pytest_codeeval import settings

    assert settings.resolve(pytester.parseconfig()).compile_batch == "auto"
    assert settings.resolve(pytester.parseconfig("--codeeval-compile-batch=off")).compile_batch == "off"
    pytester.makeini("[pytest]\ncodeeval_compile_batch = off\n")
    assert settings.resolve(pytester.parseconfig()).compile_batch == "off"
    assert settings.resolve(pytester.parseconfig("--codeeval-compile-batch=auto")).compile_batch == "auto"
    with pytest.raises(pytest.UsageError, match="expected one of auto, off"):
        settings.resolve(pytester.parseconfig("--codeeval-compile-batch=on"))


def _queued(tests: str, sources: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "tests": tests, "timeout": 10.0, "source": s} for i, s in enumerate(sources)]


@pytest.mark.parametrize(("language", "tools", "expected"), [
    # no batch compiler: only the first program's identical copies join it; the distinct ones stay
    # queued, for the other slots (grouped, they waited in line on one slot: 0.75x the samples/s)
    ("cpp", {"g++": "/usr/bin/g++"}, ["a", "a"]),
    ("go", {"go": "/usr/bin/go"}, ["a", "a"]),
    # javac in one JVM: the problem's samples, distinct or not, up to GROUP_MAX
    ("java", {"javac": "j", "javac_batch": "b.jar", "javac_vm": "java"}, ["a", "b", "a", "c"]),
    # Java without the prepared batch compiler is a language without one
    ("java", {"javac": "j"}, ["a", "a"]),
])
def test_a_group_holds_distinct_programs_only_where_the_language_compiles_them_in_one_process(
        language: str, tools: dict[str, str], expected: list[str]) -> None:
    from collections import deque

    from pytest_codeeval.sandbox import server

    fork_server = object.__new__(server.ForkServer)  # the grouping alone: no processes
    first, *rest = _queued("k", ["a", "b", "a", "c"])
    other = _queued("other-problem", ["a"])[0]
    fork_server.queue = deque([rest[0], other, *rest[1:]])
    fork_server.free_slots = [1]  # one slot free (the other busy): the whole problem may go
    spec = server._Spec(sources=[("tests", "")], language={"name": language, "tools": tools})
    group = [first, *fork_server._take_group(first, spec)]
    assert [r["source"] for r in group] == expected
    left = [r["source"] for r in fork_server.queue if r["tests"] == "k"]
    assert sorted(left + [r["source"] for r in group]) == ["a", "a", "b", "c"]  # nothing lost or doubled
    assert other in fork_server.queue
