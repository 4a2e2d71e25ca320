"""The lines a failure points at, quoted from the problem's own source for its failure report.

A sample's diagnostics (a Python traceback, a compiler's error, a failed assert, a panic, a Java
stack trace) cite lines of what was run: the program (prompt + completion) and the problem's
tests. This module finds those citations and quotes the lines, with a little context, saying
whose line each is::

    ---- <program:HumanEval_2_truncate_number> line 17, the program's own line (cited as Problem.java:17) ----
      15 |     public static float truncateNumber(float number) {
      16 |         int[] a = new int[1];
    > 17 |         return a[5];
    ---- <tests:HumanEval_2_truncate_number> line 3, the problem's tests (cited as Problem.java:20) ----
      1 |     }
      2 |     public static void main(String[] args) {
    > 3 |     assert(truncateNumber((3.5f)) == (0.5f));
      4 |     assert(truncateNumber((1.25f)) == (0.25f));

The quoted text never comes from the diagnostics: only the location does. It comes from the
item's own :class:`~pytest_codeeval.problem.ProblemResult`, the problem's tests and the very
program that was judged, so a report can only quote its own problem (serial or under xdist,
where the worker that ran the item formats its report). Python's tests are compiled under
``<tests:TASK>`` (``<tests:TASK:STAGE>`` for HumanEval+/MBPP+), so a citation of another
problem's tests is never quoted. Other languages are reassembled here as the sandbox assembled
them (:meth:`~pytest_codeeval.sandbox.languages.LanguageRunner.layout`), so that a line of the
assembled file maps back to the program, the tests, or the runner's own lines (never quoted).

What a sample wrote is adversarial: it can print citations of its own. They are read only as
(file name, line number) pairs with bounded patterns over bounded text, and at worst make the
report quote another line of the same problem. Every quoted line is escaped with
:func:`~pytest_codeeval.problem.printable`. Anything unexpected gives no excerpt: the report is
then as it was without one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_codeeval.problem import Outcome, ProblemResult, SampleResult, printable

BEFORE, AFTER = 2, 2  # lines of context around a quoted line (of the same origin only)
WIDTH = 200  # characters of a quoted line
SCAN_CHARS = 65536  # of each text searched for citations (the sandbox keeps 64 KiB of each)
MAX_CITATIONS = 200  # read from one sample's texts
MAX_EXCERPTS = 3

PROGRAM, TESTS, PRELUDE = "program", "tests", "prelude"
ROLES = {PROGRAM: "the program's own line", TESTS: "the problem's tests", PRELUDE: "the problem's prompt"}

# Python: <completion> line 3 (the judge's and the sample's one-line details), File "<tests:T>", line 9
_PYTHON = re.compile(r'<(completion|tests:[^<>\n]{1,300}|prelude:[^<>\n]{1,300})>"?,? line (\d{1,7})')
_PYTHON_LINES = re.compile(r"\r\n|\r|\n")  # how Python's compiler counts lines (not str.splitlines)


@dataclass(frozen=True)
class Text:
    """One text a diagnostic can cite: its lines and the label reports give it."""

    label: str  # <tests:HumanEval/2:base>, <program:HumanEval_0_has_close_elements>
    kind: str  # PROGRAM, TESTS or PRELUDE
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Citation:
    """A line of a :class:`Text` a diagnostic cites, and how it cited it."""

    text: Text
    line: int  # 1-based, in ``text``
    cited: str = ""  # as the diagnostic wrote it, where that differs: "solution_test.go:37"
    note: str = ""  # what else the report says of it: "failing case test_num__0"


def report_lines(result: ProblemResult, index: int) -> list[str]:
    """The excerpts of sample ``index``'s failure, as report lines ([] when no diagnostic
    cites a line of its problem). Never raises: a report is never lost to its excerpt."""
    try:
        citations = choose(cite(result, index), result.results[index].outcome)
        return [line for c in citations for line in render(c)]
    except Exception:  # noqa: BLE001 - a report without excerpts rather than none
        return []


def cite(result: ProblemResult, index: int) -> list[Citation]:
    """Every line of this sample's own sources its diagnostics cite, in the order they cite
    them (the innermost first, as tracebacks and compilers put them); a failing case named
    by the run (Go's subtests) first of all."""
    problem, sample, program = result.problem, result.results[index], result.programs[index]
    if problem.language == "python":
        return list(_python(problem.task_id, problem.check_stages(), problem.judge_prelude, program, sample))
    return _compiled(problem.task_id, problem.language, problem.tests, program, sample)


def choose(citations: list[Citation], outcome: Outcome) -> list[Citation]:
    """What a report quotes: the failing case the run named, the first line a diagnostic cites,
    and for failures at run time (where a stack holds both) the first cited line of the other
    kind too: the program's line that raised and the test that called it. A compiler's later
    errors mostly follow from its first: one is enough."""
    chosen: list[Citation] = []

    def add(c: Citation) -> None:
        if len(chosen) < MAX_EXCERPTS and not any(c.text is d.text and c.line == d.line for d in chosen):
            chosen.append(c)

    for c in [c for c in citations if c.note][:1]:
        add(c)
    cited = [c for c in citations if not c.note]
    if cited:
        add(cited[0])
        if outcome not in (Outcome.COMPILE_ERROR, Outcome.SYNTAX_ERROR):
            other = next((c for c in cited if c.text.kind != cited[0].text.kind), None)
            if other is not None:
                add(other)
    return chosen


def render(c: Citation) -> list[str]:
    """A header saying whose line it is, then the line marked ">" among its neighbours, all
    numbered as in that text."""
    role = ROLES[c.text.kind]
    extra = ", ".join(x for x in (c.note, f"cited as {c.cited}" if c.cited else "") if x)
    lines = [printable(f"---- {c.text.label} line {c.line}, {role}" + (f" ({extra})" if extra else "") + " ----")]
    first, last = max(1, c.line - BEFORE), min(len(c.text.lines), c.line + AFTER)
    width = len(str(last))
    for n in range(first, last + 1):
        text = printable(c.text.lines[n - 1].rstrip("\r"))
        if len(text) > WIDTH:
            text = text[:WIDTH] + " ..."
        lines.append(f"{'>' if n == c.line else ' '} {n:>{width}} | {text}".rstrip())
    return lines


def _scanned(sample: SampleResult, *names: str) -> Iterator[str]:
    for name in names:
        yield str(getattr(sample, name))[:SCAN_CHARS]


# -- Python: the judge names the tests <tests:TASK>, the program <completion> -------------------------
def _python(task_id: str, stages: list[tuple[str, str]], prelude: str, program: str,
            sample: SampleResult) -> Iterator[Citation]:
    texts = {"completion": Text(f"<program:{task_id}>", PROGRAM, tuple(_PYTHON_LINES.split(program)))}
    for name, source in stages:  # named as judge.compile_tests names them
        key = f"tests:{task_id}:{name}" if len(stages) > 1 else f"tests:{task_id}"
        texts[key] = Text(f"<{key}>", TESTS, tuple(_PYTHON_LINES.split(source)))
    if prelude:
        texts[f"prelude:{task_id}"] = Text(f"<prelude:{task_id}>", PRELUDE, tuple(_PYTHON_LINES.split(prelude)))
    found = 0
    for text in _scanned(sample, "detail", "traceback"):
        for m in _PYTHON.finditer(text):
            found += 1
            if found > MAX_CITATIONS:
                return
            where, line = texts.get(m.group(1)), int(m.group(2))
            if where is not None and 1 <= line <= len(where.lines):  # another problem's: never
                yield Citation(where, line)


# -- other languages: the file the runner assembled, mapped back line by line -------------------------
def _compiled(task_id: str, language: str, tests: str, program: str, sample: SampleResult) -> list[Citation]:
    from pytest_codeeval.sandbox import languages  # the fork server's module: standard library only

    runner = languages.get(language)
    layout = runner.layout(program, tests)
    if layout is None:
        return []
    texts = {languages.PROGRAM: Text(f"<program:{task_id}>", PROGRAM, tuple(program.split("\n"))),
             languages.TESTS: Text(f"<tests:{task_id}>", TESTS, tuple(tests.split("\n")))}
    citations = []
    case = runner.failing_case(tests, sample.stdout[:SCAN_CHARS] + "\n" + sample.stderr[:SCAN_CHARS])
    if case is not None and 1 <= case[0] <= len(texts[languages.TESTS].lines):
        citations.append(Citation(texts[languages.TESTS], case[0], note=f"failing case {case[1]}"))
    files = "|".join(re.escape(f) for f in sorted({layout.file, *layout.others}, key=len, reverse=True))
    # solution.cpp:14: (g++, assert), solution.rs:9:6 (rustc, panics), (Problem.java:17),
    # ./solution_test.go:16:1, solution.sh: line 12 (bash); never inside a longer name
    pattern = re.compile(rf"(?<![\w.+-])({files})(?::(\d{{1,7}})|: line (\d{{1,7}}))")
    found = 0
    # the detail is a line of these (bash's: the last of stderr): read after them, it keeps
    # the order in which the run cited lines, the innermost first
    for text in _scanned(sample, "stderr", "stdout", "detail"):
        for m in pattern.finditer(text):
            found += 1
            if found > MAX_CITATIONS:
                return citations
            if m.group(1) != layout.file:
                continue  # the runner's own files
            origin = layout.origin(int(m.group(2) or m.group(3)))
            if origin is None or origin[0] not in texts:
                continue  # past the end, or the runner's confirmation
            where = texts[origin[0]]
            if 1 <= origin[1] <= len(where.lines):
                citations.append(Citation(where, origin[1], cited=m.group(0)))
    return citations
