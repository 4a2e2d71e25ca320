"""Failure excerpts (pytest_codeeval/excerpt.py) on made-up verdicts: which citations are quoted,
from which text, and that nothing a sample writes gets further than a line number of its own
problem. End-to-end runs are in test_plugin.py (Python) and test_multiple.py (other languages)."""

from __future__ import annotations

import json

import pytest

from pytest_codeeval import excerpt
from pytest_codeeval.problem import Outcome, Problem, ProblemResult, SampleResult
from pytest_codeeval.sandbox import languages

TESTS = "def check(f):\n    assert f(1) == 2\n    assert f(2) == 3\ncheck(inc)\n"
PROGRAM = "def inc(x):\n    y = None\n    return y.z\n"


def result(detail: str = "", traceback: str = "", stdout: str = "", stderr: str = "", *, language: str = "python",
           tests: str = TESTS, program: str = PROGRAM, task_id: str = "Demo/1",
           outcome: Outcome = Outcome.FAILED) -> ProblemResult:
    problem = Problem("demo", task_id, "", tests, "inc", "", language=language)
    sample = SampleResult(outcome, detail, traceback, stdout, stderr)
    return ProblemResult(problem, (program,), (sample,))


def test_python_citations_of_its_own_tests_and_program_are_quoted() -> None:
    lines = excerpt.report_lines(result(
        "AttributeError: 'NoneType' object has no attribute 'z' (<completion> line 3: return y.z); "
        "called from <tests:Demo/1> line 2: assert f(1) == 2"), 0)
    assert lines == [
        "---- <program:Demo/1> line 3, the program's own line ----",
        "  1 | def inc(x):",
        "  2 |     y = None",
        "> 3 |     return y.z",
        "  4 |",
        "---- <tests:Demo/1> line 2, the problem's tests ----",
        "  1 | def check(f):",
        "> 2 |     assert f(1) == 2",
        "  3 |     assert f(2) == 3",
        "  4 | check(inc)",
    ]


@pytest.mark.parametrize("detail", [
    "AssertionError (<tests:Demo/2> line 2: assert f(1) == 2)",  # another problem's tests: never
    "AssertionError (<tests:Demo/1> line 0: x)",
    "AssertionError (<tests:Demo/1> line 9999999: x)",  # past the end
    "AssertionError (<tests:Demo/1> line 99999999999: x)",  # more digits than a line number has
    "AssertionError (<tests:Demo/1:base> line 2: x)",  # a stage this problem does not have
    "AssertionError (tests:Demo/1 line 2)",
    "",
])
def test_python_citations_of_anything_else_are_not(detail: str) -> None:
    assert excerpt.report_lines(result(detail), 0) == []


def test_what_a_program_wrote_is_shown_escaped_and_bounded() -> None:
    program = "def inc(x):\n    return '\x1b[2J\x07" + "a" * 5000 + "'\n"
    lines = excerpt.report_lines(result("TypeError: x (<completion> line 2: ...)", program=program), 0)
    marked = next(x for x in lines if x.startswith(">"))
    assert "\x1b" not in marked and "\\x1b[2J\\x07" in marked
    assert marked.endswith(" ...") and len(marked) < excerpt.WIDTH + 20
    assert all(x.isprintable() for x in lines)


def test_a_flood_of_citations_is_read_only_so_far() -> None:
    spam = "<completion> line 1: x\n" * 100_000
    lines = excerpt.report_lines(result(traceback=spam), 0)
    assert lines[0].startswith("---- <program:Demo/1> line 1,")


# -- other languages: the assembled file, mapped back ------------------------------------------------
JAVA_PROGRAM = "class Problem {\n    public static int f(int x) {\n        int[] a = new int[1];\n        return a[5];"
JAVA_TESTS = "    }\n    public static void main(String[] args) {\n    assert(f(1) == 2);\n    }\n\n}\n"


def test_java_stack_quotes_program_and_test_lines_never_the_runners() -> None:
    stderr = ("Exception in thread \"main\" java.lang.ArrayIndexOutOfBoundsException: Index 5\n"
              "\tat Problem.f(Problem.java:4)\n\tat Problem.codeevalTestsMain(Problem.java:7)\n"
              "\tat CodeevalMain.main(Problem.java:13)\n")
    citations = excerpt.cite(result(stderr=stderr, language="java", tests=JAVA_TESTS, program=JAVA_PROGRAM,
                                    task_id="HumanEval_9_f"), 0)
    # the runner's CodeevalMain (line 13) is its own: never quoted
    assert [(c.text.label, c.line, c.cited) for c in citations] == [
        ("<program:HumanEval_9_f>", 4, "Problem.java:4"), ("<tests:HumanEval_9_f>", 3, "Problem.java:7")]
    lines = excerpt.report_lines(result(stderr=stderr, language="java", tests=JAVA_TESTS, program=JAVA_PROGRAM,
                                        task_id="HumanEval_9_f"), 0)
    assert "> 4 |         return a[5];" in lines and "> 3 |     assert(f(1) == 2);" in lines
    # the renamed main still maps to the tests' own line
    layout = languages.get("java").layout(JAVA_PROGRAM, JAVA_TESTS)
    assert layout is not None and layout.origin(6) == (languages.TESTS, 2)
    assert "codeevalTestsMain" in layout.lines[5]


@pytest.mark.parametrize("cited", ["xProblem.java:4", "Problem.javax:4", "Problem.java:0", "Problem.java:400",
                                   "/elsewhere/Other.java:4"])
def test_compiled_citations_of_other_files_or_lines_are_not_quoted(cited: str) -> None:
    assert excerpt.report_lines(result(stderr=f"at Problem.f({cited})\n", language="java", tests=JAVA_TESTS,
                                       program=JAVA_PROGRAM), 0) == []


def test_compile_errors_quote_the_first_only() -> None:
    stderr = "Problem.java:4: error: x\nProblem.java:7: error: y\n"
    lines = excerpt.report_lines(result(stderr=stderr, language="java", tests=JAVA_TESTS, program=JAVA_PROGRAM,
                                        outcome=Outcome.COMPILE_ERROR), 0)
    assert [x for x in lines if x.startswith("----")] == [
        "---- <program:Demo/1> line 4, the program's own line (cited as Problem.java:4) ----"]


# runners that need their test driver's own shape (a line they hook into): a real one, from the data
REAL_DRIVER = ("cs", "d", "jl", "lua", "rkt", "scala", "swift", "ts", "php", "pl", "rb", "r")
REWRITE_IN_PLACE = ("java", "sh", "cs", "scala", "lua", "rkt", "d")  # change a driver line where it stands: main renamed (java, cs, scala), set -e (sh), os.exit (lua), the require line (rkt), the pass inside main (d)


@pytest.mark.parametrize("lang", sorted(languages.RUNNERS))
def test_every_runner_maps_program_and_tests_lines_back(lang: str, request: pytest.FixtureRequest) -> None:
    """Each runner's assembly, line by line: the program's lines first, then every line of the
    tests once and in order, the runner's own lines (the confirmation) apart."""
    program = {"go": "package demo_test\n\nfunc f() int {\n    return 1\n}\n", "java": JAVA_PROGRAM}.get(
        lang, "first line\n  second line")
    tests = {"java": JAVA_TESTS, "go": "func TestF(t *testing.T) {\n  x := 1\n}\n",
             "sh": "}\n\nset -e\nrun_test() {\n    [[ 1 = 1 ]]\n}\n\nrun_test\n"}.get(
        lang, "}\n\nint main() {\n    check(1);\n    check(2);\n}\n")
    if lang in REAL_DRIVER:
        data_dir = request.getfixturevalue("data_dir")
        with open(data_dir / "multipl-e" / f"humaneval-{lang}-reworded.jsonl") as f:
            record = json.loads(f.readline())
        program, tests = record["prompt"] + "\n", record["tests"]
    layout = languages.get(lang).layout(program, tests)
    assert layout is not None
    program_lines = program.count("\n") + 1
    assert layout.origins[:program_lines] == tuple((languages.PROGRAM, i + 1) for i in range(program_lines))
    mapped = [n for kind, n in layout.origins[program_lines:] if kind == languages.TESTS]
    assert mapped == list(range(1, tests.count("\n") + 2)), layout.origins
    for line, (kind, n) in enumerate(layout.origins, 1):
        if kind == languages.TESTS and lang not in REWRITE_IN_PLACE:
            assert layout.lines[line - 1] == tests.split("\n")[n - 1], (line, n)


def test_go_names_the_failing_case_of_its_table() -> None:
    tests = ("func TestF(t *testing.T) {\n  candidate := f\n   tests := []test{\n     { actual: candidate(1), expected: 2 },\n"
             "     { actual: candidate(7), expected: 8 },\n   }\n}\n")
    stdout = "--- FAIL: TestF (0.00s)\n    --- FAIL: TestF/test_num__1 (0.00s)\n        solution_test.go:9: expected\n"
    go = languages.get("go")
    assert go.failing_case(tests, stdout) == (5, "test_num__1")
    assert go.failing_case(tests, stdout.replace("__1", "__7")) is None  # no such case
    lines = excerpt.report_lines(result(stdout=stdout, language="go", tests=tests,
                                        program="package demo_test\nfunc f(x int) int {\n    return x\n}\n"), 0)
    assert lines[0] == "---- <tests:Demo/1> line 5, the problem's tests (failing case test_num__1) ----"
    assert "> 5 |      { actual: candidate(7), expected: 8 }," in lines


def test_an_unknown_language_or_a_driver_of_another_shape_gives_no_excerpt() -> None:
    assert excerpt.report_lines(result(stderr="solution.x:1\n", language="cobol"), 0) == []
    # the Java runner refuses a driver without main: nothing to map
    assert excerpt.report_lines(result(stderr="(Problem.java:1)\n", language="java", tests="}\n"), 0) == []
