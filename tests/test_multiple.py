"""MultiPL-E (humaneval-<lang>, mbpp-<lang>) end to end: the real benchmark folders, the real
prompt files, completions replayed from generations files.

The solved set (``tests/data/multiple_solved.jsonl``, written for this project) holds right
completions of three real problems per language (Julia's and Swift's unverified: no toolchain
where they were written), cut at the records' stop tokens as a model's would be. Each language
also gets completions that are wrong, do not compile, loop, or exit early, and each must get its
own label.

Every problem of every prompt set, completed with a trivially wrong body, must assemble,
execute and fail cleanly: a slice runs by default, all of them with CODEEVAL_MULTIPLE_FULL=1
(``CODEEVAL_MULTIPLE_FULL=1 pytest tests/test_multiple.py -k every_problem``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval.benchmarks import multiple
from pytest_codeeval.sandbox import languages
from tests.conftest import REPO, write_jsonl
from tests.reports import Excerpt, excerpts, quotes, report_sections

SOLVED = Path(__file__).parent / "data" / "multiple_solved.jsonl"
LANGS = multiple.LANGUAGES
FULL = os.environ.get("CODEEVAL_MULTIPLE_FULL") == "1"
SLICE = 6  # problems per prompt set in the default run, spread over the file
HOME = os.environ.get("HOME", "")  # pytester replaces it; rustup's proxy finds its toolchain through it

# Completions of HumanEval_13_greatest_common_divisor, one per outcome: (completion, outcome, detail
# fragment). "right" comes from the solved set.
GCD = "HumanEval_13_greatest_common_divisor"
KINDS: dict[str, list[tuple[str, str, str]]] = {
    "cpp": [
        ("\n    return a + b;", "failed", "Assertion"),
        ("\n    return a +;", "compile_error", "error: expected primary-expression"),
        ("\n    volatile long x = 0;\n    while (true) x++;", "timeout", "CPU time"),
        ("\n    std::exit(0);", "exited", "before its tests confirmed"),
        ("\n    long* p = nullptr;\n    return *p;", "crashed", "SIGSEGV"),
    ],
    "java": [
        ("\n        return a + b;", "failed", "java.lang.AssertionError"),
        ("\n        return a +;", "compile_error", "error: illegal start of expression"),
        ("\n        while (true) { a++; }", "timeout", "CPU time"),
        ("\n        System.exit(0);\n        return a;", "exited", "before its tests confirmed"),
    ],
    "rs": [
        ("\n    a + b", "failed", "panicked at"),
        ("\n    a +", "compile_error", "error"),
        ("\n    let mut x = a;\n    loop {\n        x = x.wrapping_add(1);\n    }", "timeout", "CPU time"),
        ("\n    std::process::exit(0)", "exited", "before its tests confirmed"),
    ],
    "go": [
        ("\n    return a + b\n}\n", "failed", "got '%!s(int=10)'"),
        ("\n    return a +\n}\n", "compile_error", "solution_test.go:"),
        ("\n    for {\n        a++\n    }\n}\n", "timeout", "CPU time"),
    ],
    "js": [
        ("\n  return a + b;\n}\n", "failed", "AssertionError"),
        ("\n  return a +;\n}\n", "syntax_error", "SyntaxError"),
        ("\n  while (true) { a++; }\n}\n", "timeout", "CPU time"),
        ("\n  process.exit(0);\n}\n", "exited", "before its tests confirmed"),
    ],
    "sh": [
        ("\n    echo $(( $1 + $2 ))", "failed", "exit status 1"),
        ("\n    if then", "syntax_error", "syntax error"),
        ("\n    while true; do :; done", "timeout", "CPU time"),
        # the candidate runs in $(...): exit leaves only that subshell, and the test fails
        ("\n    exit 0", "failed", "exit status 1"),
    ],
    "lua": [
        ("\n    return a + b\nend", "failed", "expected: 1, actual: 10"),
        ("\n    return a +\nend", "syntax_error", "unexpected symbol"),
        ("\n    while true do a = a + 1 end\nend", "timeout", "CPU time"),
        # luaunit refuses an exit while its tests run: an error of the test
        ("\n    os.exit(0)\nend", "failed", "trying to exit"),
    ],
    "php": [
        ("\n    return $a + $b;\n}", "failed", "Test failed!"),
        ("\n    return $a +;\n}", "syntax_error", "syntax error"),
        ("\n    while (true) { $a++; }\n}", "timeout", "CPU time"),
        ("\n    exit(0);\n}", "exited", "before its tests confirmed"),
    ],
    "pl": [
        ("\n    return $a + $b;\n}", "failed", "exit status 1"),  # the driver exits 1 without a word
        ("\n    return $a +;\n}", "syntax_error", "syntax error"),
        ("\n    while (1) { $a++; }\n}", "timeout", "CPU time"),
        ("\n    exit 0;\n}", "exited", "before its tests confirmed"),
    ],
    "rb": [
        ("\n  a + b\nend", "failed", "Failure: test_greatest_common_divisor"),
        ("\n  a +\nend", "syntax_error", "syntax error"),
        ("\n  loop { a += 1 }\nend", "timeout", "CPU time"),
        ("\n  exit 0\nend", "exited", "before its tests confirmed"),
    ],
    "r": [
        ("\n    a + b\n}", "failed", "is not TRUE"),
        ("\n    a +\n}", "syntax_error", "unexpected '}'"),
        ("\n    repeat { a <- a + 1 }\n}", "timeout", "CPU time"),
        ("\n    quit(status = 0)\n}", "exited", "before its tests confirmed"),
    ],
    "ts": [
        ("\n  return a + b;\n}", "failed", "AssertionError"),
        ("\n  return a +;\n}", "compile_error", "error TS1109"),
        ("\n  return \"one\";\n}", "compile_error", "error TS2322"),  # a type error fails tsc too
        ("\n  while (true) { a++; }\n}", "timeout", "CPU time"),
        ("\n  require('process').exit(0);\n  return a;\n}", "exited", "before its tests confirmed"),
    ],
    "rkt": [
        ("\n  (+ a b))", "failed", "actual:     10"),
        ("\n  (undefined-function a b))", "compile_error", "unbound identifier"),
        ("\n  (let loop ([x a]) (loop (add1 x))))", "timeout", "CPU time"),
        ("\n  (exit 0))", "exited", "before its tests confirmed"),
    ],
    "scala": [
        ("\n        a + b", "failed", "java.lang.AssertionError"),
        ("\n        a +", "compile_error", "error"),
        ("\n        var x = a\n        while (true) { x += 1 }\n        x", "timeout", "CPU time"),
        ("\n        System.exit(0)\n        a", "exited", "before its tests confirmed"),
    ],
    "cs": [  # humaneval-cs's prompts end with the signature commented out: a completion repeats it
        ("\n    public static long GreatestCommonDivisor(long a, long b) {\n        return a + b;", "failed",
         "Debug.Assert failed"),
        ("\n    public static long GreatestCommonDivisor(long a, long b) {\n        return a +;", "compile_error",
         "error CS1525"),
        ("\n        return a + b;", "compile_error", "error CS"),  # a bare body: the data's defect
        ("\n    public static long GreatestCommonDivisor(long a, long b) {\n        while (true) { a++; }", "timeout",
         "CPU time"),
        ("\n    public static long GreatestCommonDivisor(long a, long b) {\n        Environment.Exit(0);\n        return a;",
         "exited", "before its tests confirmed"),
    ],
    "d": [
        ("\n{\n    return a + b;\n}", "failed", "AssertError@solution.d("),
        ("\n{\n    return a +;\n}", "compile_error", "Error:"),
        ("\n{\n    while (true) { a++; }\n}", "timeout", "CPU time"),
        ("\n{\n    import core.stdc.stdlib : exit;\n    exit(0);\n    return a;\n}", "exited", "before its tests confirmed"),
    ],
    # jl, swift: no toolchain in Debian; their items skip (test_toolchains_without_a_package_skip...)
    "jl": [], "swift": [],
}


def solved(lang: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in SOLVED.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["benchmark"].endswith(f"-{lang}")]


def records(bench: str, data: Path) -> dict[str, dict[str, Any]]:
    path = data / multiple.FOLDER / multiple.file_name(bench)
    return {r["name"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.fixture
def multiple_dirs(pytester: pytest.Pytester, data_dir: Path, groundtruth_cache: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (data_dir / multiple.FOLDER).is_dir():
        pytest.skip(f"MultiPL-E prompt files not found in {data_dir / multiple.FOLDER}")
    for bench in os.listdir(REPO / "benchmarks"):
        if bench.split("-")[-1] in LANGS:
            shutil.copytree(REPO / "benchmarks" / bench, pytester.path / "benchmarks" / bench,
                            ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("CODEEVAL_DATA", str(data_dir))
    monkeypatch.setenv("CODEEVAL_CACHE", str(groundtruth_cache))  # prepared toolchains: once a session
    monkeypatch.setenv("HOME", HOME)
    return pytester.path / "benchmarks"


def need(lang: str) -> None:
    reason = languages.missing(lang)
    if reason:
        pytest.skip(reason)


def results(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "r.json").read_text())


# -- the data --------------------------------------------------------------------------------------
def test_prompt_files_load_with_bigcode_layout(data_dir: Path) -> None:
    if not (data_dir / multiple.FOLDER).is_dir():
        pytest.skip("MultiPL-E prompt files not found")
    from pytest_codeeval import benchmarks

    counts = {}
    for source in multiple.SOURCES:
        for lang in LANGS:
            bench = benchmarks.load(f"{source}-{lang}", data_dir)
            counts[bench.name] = len(bench.problems)
            raw = records(bench.name, data_dir)
            p = bench.problems[0]
            assert p.task_id in raw and p.language == lang and p.reference == ""
            assert p.prompt == raw[p.task_id]["prompt"].strip() == p.program_prefix
            assert p.tests == raw[p.task_id]["tests"]
            assert p.stop == (*raw[p.task_id]["stop_tokens"], "<file_sep>")
            assert p.instruction.startswith(f"Please provide a self-contained {languages.get(lang).display} script")
    # the data README's counts (problems the translator could not handle are absent)
    assert counts == {"humaneval-js": 161, "humaneval-cpp": 161, "humaneval-java": 158, "humaneval-rs": 156,
                      "humaneval-go": 154, "humaneval-sh": 158, "mbpp-js": 399, "mbpp-cpp": 398, "mbpp-java": 387,
                      "mbpp-rs": 354, "mbpp-go": 375, "mbpp-sh": 389,
                      "humaneval-lua": 161, "humaneval-php": 161, "humaneval-pl": 161, "humaneval-rb": 161,
                      "humaneval-r": 161, "humaneval-ts": 159, "mbpp-lua": 399, "mbpp-php": 399, "mbpp-pl": 399,
                      "mbpp-rb": 399, "mbpp-r": 397, "mbpp-ts": 391,
                      "humaneval-rkt": 161, "humaneval-scala": 160, "humaneval-cs": 158, "humaneval-d": 156,
                      "humaneval-jl": 159, "humaneval-swift": 158, "mbpp-rkt": 399, "mbpp-scala": 397, "mbpp-cs": 387,
                      "mbpp-d": 358, "mbpp-jl": 391, "mbpp-swift": 398}


def test_solved_set_is_cut_at_the_stop_tokens(data_dir: Path) -> None:
    """The solved completions look like generations: none holds a stop sequence of its record."""
    if not (data_dir / multiple.FOLDER).is_dir():
        pytest.skip("MultiPL-E prompt files not found")
    rows = [json.loads(line) for line in SOLVED.read_text().splitlines()]
    assert Counter(r["benchmark"].split("-")[1] for r in rows) == {lang: 3 for lang in LANGS}
    for r in rows:
        stops = records(r["benchmark"], data_dir)[r["task_id"]]["stop_tokens"]
        assert not any(s in r["completion"] for s in stops), (r["benchmark"], r["task_id"])


# -- the solved set and every label, per language ----------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
def test_solved_set_passes_and_each_wrong_kind_gets_its_label(pytester: pytest.Pytester, multiple_dirs: Path,
                                                             data_dir: Path, lang: str) -> None:
    need(lang)
    right = solved(lang)
    gcd_right = next(r for r in right if r["task_id"] == GCD)
    kinds = KINDS[lang]
    # two files: the other solved problems (1 sample each) and GCD with one sample per kind
    write_jsonl(pytester.path / "solved.jsonl", [{"task_id": r["task_id"], "completion": r["completion"]}
                                                 for r in right if r["task_id"] != GCD])
    write_jsonl(pytester.path / "kinds.jsonl", [{"task_id": GCD, "completion": c}
                                                for c in [gcd_right["completion"], *(k[0] for k in kinds)]])
    result = pytester.runpytest(f"benchmarks/humaneval-{lang}", f"benchmarks/mbpp-{lang}",
                                f"--codeeval-generations=humaneval-{lang}=kinds.jsonl",
                                "--codeeval-generations=solved.jsonl", "--codeeval-json=r.json",
                                "--codeeval-timeout=2", "-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=3, skipped=others(lang, data_dir))
    doc = results(pytester)
    problems = {**doc["problems"][f"humaneval-{lang}"], **doc["problems"][f"mbpp-{lang}"]}
    assert len(problems) == 3
    for task_id, record in problems.items():
        if task_id != GCD:
            assert record["outcomes"] == ["passed"], (task_id, record)
    gcd = problems[GCD]
    assert gcd["outcomes"] == ["passed", *(k[1] for k in kinds)]
    assert gcd["c"] == 1 and gcd["n"] == 1 + len(kinds)
    # compile time apart from run time: every sample was compiled (or syntax-checked); those that
    # did not compile never ran
    assert all(s is not None and s > 0 for s in gcd["compile_seconds"]), gcd
    for outcome, run_s in zip(gcd["outcomes"], gcd["run_seconds"]):
        assert (run_s == 0) == (outcome in ("compile_error", "syntax_error")), gcd
    assert doc["summary"][f"humaneval-{lang}"]["solved"] == 2


def others(lang: str, data: Path) -> int:
    """Problems of humaneval-<lang> and mbpp-<lang> without samples in the run (skipped)."""
    return sum(len(records(f"{s}-{lang}", data)) for s in multiple.SOURCES) - 3


@pytest.mark.parametrize("lang", LANGS)
def test_failure_details_name_the_cause(lang: str) -> None:
    """The sandbox's verdicts, sample by sample: each label's detail says why."""
    need(lang)
    from pytest_codeeval.benchmarks import load
    from pytest_codeeval.sandbox import Sandbox

    data = Path(os.environ.get("CODEEVAL_DATA") or REPO.parent / "shared" / "data")
    if not (data / multiple.FOLDER).is_dir():
        pytest.skip("MultiPL-E prompt files not found")
    problem = load(f"humaneval-{lang}", data).by_task_id[GCD]
    with Sandbox(2, isolation="auto") as sb:
        futures = [sb.submit(problem.program_from_completion(c), problem.tests, 2.0, None, lang)
                   for c, _, _ in KINDS[lang]]
        for (_, outcome, fragment), f in zip(KINDS[lang], futures):
            r = f.result()
            assert (r.outcome.value, fragment in r.detail) == (outcome, True), r


# -- isolation modes ------------------------------------------------------------------------------
# mbpp_3_is_not_prime answered wrongly (but compiling) in each language
WRONG_PRIME = {"cpp": "\n    return n > 100;", "java": "\n        return n > 100;", "rs": "\n    n > 100",
               "go": "\n    return n > 100\n}\n", "js": "\n  return n > 100;\n}\n", "sh": "\n    echo false",
               "lua": "\n    return n > 100\nend", "php": "\n    return $n > 100;\n}", "pl": "\n    return $n > 100;\n}",
               "rb": "\n  n > 100\nend", "r": "\n    n > 100\n}", "ts": "\n  return n > 100;\n}",
               "rkt": "\n  (> n 100))", "scala": "\n        n > 100", "cs": "\n        return n > 100;",
               "d": "\n{\n    return n > 100;\n}", "jl": "\n    return n > 100\nend", "swift": "\n    return n > 100"}


@pytest.mark.parametrize("isolation", ["fork", "namespaces"])
def test_every_language_runs_in_each_isolation_mode(pytester: pytest.Pytester, multiple_dirs: Path,
                                                   isolation: str) -> None:
    """The right completions pass and a wrong one fails, with the compilers' caches and temporary
    files in the sample's own directory (namespaces: a read-only root, another uid as root)."""
    langs = [lang for lang in LANGS if languages.missing(lang) is None]
    if not langs:
        pytest.skip("no MultiPL-E toolchain installed")
    args = []
    for lang in langs:
        for source, prefix in multiple.SOURCES.items():
            rows = [{"task_id": r["task_id"], "completion": r["completion"]} for r in solved(lang)
                    if r["task_id"].startswith(prefix)]
            if source == "mbpp":
                rows.append({"task_id": rows[0]["task_id"], "completion": WRONG_PRIME[lang]})
            write_jsonl(pytester.path / f"{source}-{lang}.jsonl", rows)
            args += [f"benchmarks/{source}-{lang}", f"--codeeval-generations={source}-{lang}={source}-{lang}.jsonl"]
    result = pytester.runpytest(*args, f"--codeeval-isolation={isolation}", "--codeeval-json=r.json",
                                "--codeeval-k=1", "-p", "no:cacheprovider")
    if isolation == "namespaces" and "refused" in result.stdout.str() + result.stderr.str():
        pytest.skip("namespaces refused on this machine")
    doc = results(pytester)
    assert doc["environment"]["isolation"]["mode"] == isolation
    for lang in langs:
        he, mb = doc["problems"][f"humaneval-{lang}"], doc["problems"][f"mbpp-{lang}"]
        assert [p["outcomes"] for p in he.values()] == [["passed"], ["passed"]], (lang, he)
        assert [p["outcomes"] for p in mb.values()] == [["passed", "failed"]], (lang, mb)
    assert result.ret == pytest.ExitCode.OK


# -- every problem of every prompt set ---------------------------------------------------------------
# A body that compiles for any signature of the language and fails at the first call.
WRONG = {
    "cpp": "\n    throw std::runtime_error(\"codeeval: trivially wrong\");",
    "java": "\n        throw new RuntimeException(\"codeeval: trivially wrong\");",
    "rs": "\n    panic!(\"codeeval: trivially wrong\")",
    "go": "\n    panic(\"codeeval: trivially wrong\")\n}\n",
    "js": "\n  throw new Error(\"codeeval: trivially wrong\");\n}\n",
    "sh": "\n    echo codeeval-trivially-wrong",
    "lua": "\n    error(\"codeeval: trivially wrong\")\nend",
    "php": "\n    throw new Exception(\"codeeval: trivially wrong\");\n}",
    "pl": "\n    die \"codeeval: trivially wrong\";\n}",
    "rb": "\n  raise \"codeeval: trivially wrong\"\nend",
    "r": "\n    stop(\"codeeval: trivially wrong\")\n}",
    "ts": "\n  throw new Error(\"codeeval: trivially wrong\");\n}",
    "rkt": "\n  (error \"codeeval: trivially wrong\"))",
    "scala": "\n        throw new RuntimeException(\"codeeval: trivially wrong\")",
    "cs": "\n        throw new Exception(\"codeeval: trivially wrong\");",  # humaneval-cs: a compile error (its prompts)
    "d": "\n{\n    throw new Exception(\"codeeval: trivially wrong\");\n}",
    "jl": "\n    error(\"codeeval: trivially wrong\")\nend",
    "swift": "\n    fatalError(\"codeeval: trivially wrong\")",
}


# Problems whose prompt or test driver is broken in the data itself, so that no completion can
# pass (MultiPL-E's translation defects: std::any compared with ==, a raw newline inside a JS
# string, a Java/Go type that does not exist, ...): {bench: {task_id: label}}, as found by the
# full run (perf/multiple_throughput.py prints them). Every other problem must fail cleanly.
KNOWN_BROKEN: dict[str, dict[str, str]] = json.loads((Path(__file__).parent / "data" / "multiple_broken.json").read_text())


@pytest.mark.parametrize("bench", [f"{s}-{lang}" for s in multiple.SOURCES for lang in LANGS])
def test_every_problem_assembles_executes_and_fails_cleanly(pytester: pytest.Pytester, multiple_dirs: Path,
                                                           data_dir: Path, bench: str) -> None:
    lang = bench.split("-")[1]
    need(lang)
    names = list(records(bench, data_dir))
    chosen = names if FULL else names[:: max(1, len(names) // SLICE)][:SLICE]
    broken = KNOWN_BROKEN.get(bench, {})
    chosen += [n for n in list(broken)[: None if FULL else 2] if n not in chosen]
    write_jsonl(pytester.path / "wrong.jsonl", [{"task_id": n, "completion": WRONG[lang]} for n in chosen])
    result = pytester.runpytest(f"benchmarks/{bench}", f"--codeeval-generations={bench}=wrong.jsonl",
                                "--codeeval-json=r.json", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(failed=len(chosen), skipped=len(names) - len(chosen))
    problems = results(pytester)["problems"][bench]
    assert set(problems) == set(chosen)
    # compiled, ran, and the first test failed, but where the data's own driver is broken
    expected = {n: broken.get(n, "failed") for n in chosen}
    assert {n: p["outcomes"][0] for n, p in problems.items()} == expected
    assert all(p["compile_seconds"][0] > 0 for p in problems.values())
    assert all(p["run_seconds"][0] > 0 for n, p in problems.items() if expected[n] == "failed")


def test_missing_toolchain_skips_with_the_package_to_install(pytester: pytest.Pytester, multiple_dirs: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": GCD, "completion": "\n  return 1;\n}\n"}])
    monkeypatch.setenv("PATH", str(pytester.path))  # no node here
    result = pytester.runpytest("benchmarks/humaneval-js", "--codeeval-generations=s.jsonl", "-rs")
    result.assert_outcomes(skipped=161)
    result.stdout.fnmatch_lines(["SKIPPED [[]161[]] *: JavaScript toolchain not found: `node` is not on PATH; "
                                 "install the Debian package nodejs (apt-get install nodejs)"])


@pytest.mark.parametrize("lang, exe, where", [("jl", "julia", "https://julialang.org/downloads/"),
                                              ("swift", "swiftc", "https://www.swift.org/install/")])
def test_toolchains_without_a_debian_package_skip_saying_where_to_get_them(
        pytester: pytest.Pytester, multiple_dirs: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        lang: str, exe: str, where: str) -> None:
    """Julia and Swift have no Debian package: their items skip with where to get the toolchain."""
    write_jsonl(pytester.path / "s.jsonl", [{"task_id": r["task_id"], "completion": r["completion"]}
                                            for r in solved(lang) if r["benchmark"] == f"humaneval-{lang}"])
    monkeypatch.setenv("PATH", str(pytester.path))  # no toolchain here, installed or not
    n = len(records(f"humaneval-{lang}", data_dir))
    result = pytester.runpytest(f"benchmarks/humaneval-{lang}", "--codeeval-generations=s.jsonl", "-rs")
    result.assert_outcomes(skipped=n)
    display = languages.get(lang).display
    result.stdout.fnmatch_lines([f"SKIPPED [[]{n}[]] *: {display} toolchain not found: `{exe}` is not on PATH; "
                                 f"Debian has no package: install * from {where}*"])


def test_reference_model_skips_multiple_without_solutions(pytester: pytest.Pytester, multiple_dirs: Path) -> None:
    result = pytester.runpytest("benchmarks/mbpp-sh", "--codeeval-model=reference", "-rs")
    result.assert_outcomes(skipped=389)
    result.stdout.fnmatch_lines(["SKIPPED [[]389[]] *: mbpp-sh has no reference solutions*"])


# -- failure reports quote the problem's own lines -------------------------------------------------
# Per language: two problems answered wrongly (each fails a test: its report quotes that test's
# line), and one whose error is in the program's own line (a runtime error where the language's
# diagnostics cite it, else a compile error), with a fragment of that line.
REPORTED = ("HumanEval_0_has_close_elements", "HumanEval_3_below_zero", "HumanEval_2_truncate_number")
REPORT_COMPLETIONS: dict[str, tuple[str, str, str, str]] = {  # lang: (0, 3, 2, fragment of 2's bad line)
    "cpp": ("\n    return false;", "\n    return true;", "\n    return undeclared_name;", "undeclared_name"),
    "java": ("\n        return false;", "\n        return true;",
             "\n        int[] a = new int[1];\n        return a[5];", "return a[5];"),
    "rs": ("\n    false", "\n    true", "\n    let v: Vec<f64> = vec![];\n    v[5]", "v[5]"),
    "go": ("\n    return false\n}\n", "\n    return true\n}\n", "\n    var a []float64\n    return a[5]\n}\n",
           "return a[5]"),
    "js": ("\n  return false;\n}\n", "\n  return true;\n}\n", "\n  let a = null;\n  return a.b;\n}\n", "return a.b;"),
    "sh": ("\n    echo false", "\n    echo true", "\n    nosuchcommand_xyz", "nosuchcommand_xyz"),
    "lua": ("\n    return false\nend", "\n    return true\nend", "\n    local t = nil\n    return t.x\nend", "return t.x"),
    "php": ("\n    return false;\n}", "\n    return true;\n}", "\n    return nosuch_function_xyz($number);\n}",
            "nosuch_function_xyz"),
    "rb": ("\n  false\nend", "\n  true\nend", "\n  nil.nosuch_method_xyz\nend", "nosuch_method_xyz"),
    "rkt": ("\n  #f)", "\n  #t)", "\n  (nosuch-function-xyz number))", "nosuch-function-xyz"),  # a compile error
    "scala": ("\n        false", "\n        true", "\n        val a = new Array[Float](1)\n        a(5)", "a(5)"),
    "ts": ("\n  return false;\n}", "\n  return true;\n}", "\n  let a: any = null;\n  return a.b;\n}", "return a.b;"),
}


def check_own_lines(section: str, task: str, tests: dict[str, str], program: str) -> list[Excerpt]:
    """Every excerpt of ``task``'s report is labelled ``task`` and quotes that line of its own
    tests or program, numbered as there; returns them."""
    found = excerpts(section)
    assert found, section
    for kind, label, line, marked, text in found:
        assert label == task and line == marked, (task, label, line, marked)
        assert quotes(tests[task] if kind == "tests" else program, line, text), (task, kind, line, text)
    return found


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang in REPORT_COMPLETIONS])
def test_failure_reports_quote_their_own_problems_lines(pytester: pytest.Pytester, multiple_dirs: Path,
                                                       data_dir: Path, lang: str, xdist: list[str]) -> None:
    """Each report quotes, under its own task id, the line of its own test that failed (never
    another problem's), and the program's own line where the error is there; the sample's
    directory never shows."""
    need(lang)
    raw = records(f"humaneval-{lang}", data_dir)
    tests = {t: raw[t]["tests"] for t in REPORTED}
    wrong0, wrong3, bad2, fragment = REPORT_COMPLETIONS[lang]
    completions = dict(zip(REPORTED, (wrong0, wrong3, bad2)))
    write_jsonl(pytester.path / "wrong.jsonl", [{"task_id": t, "completion": c} for t, c in completions.items()])
    result = pytester.runpytest(f"benchmarks/humaneval-{lang}", "--codeeval-generations=wrong.jsonl",
                                "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(failed=3, skipped=len(raw) - 3)
    out = result.stdout.str()
    assert "codeeval-sandbox-" not in out, "a report shows the sample's temporary directory"
    sections = report_sections(out)
    assert set(sections) == {f"test_humaneval_{lang}[{t}]" for t in REPORTED}, list(sections)
    for task in REPORTED:
        program = raw[task]["prompt"].strip() + completions[task]
        found = check_own_lines(sections[f"test_humaneval_{lang}[{task}]"], task, tests, program)
        quoted_tests = [text for kind, _, _, _, text in found if kind == "tests"]
        if task != REPORTED[2]:  # a failed test: its line, which no other problem has
            assert quoted_tests and any(all(text not in tests[t] for t in REPORTED if t != task) for text in quoted_tests), \
                (task, found)
        else:  # the program's own line
            assert any(kind == "program" and fragment in text for kind, _, _, _, text in found), (task, found)
            # where the stack names the test that called it too (not C++'s compile error, not
            # Rust's panic without a backtrace), it is this problem's
            if lang in ("java", "js", "go", "sh", "lua", "rb", "scala", "ts"):
                assert any(all(text not in tests[t] for t in REPORTED if t != task) for text in quoted_tests), found
