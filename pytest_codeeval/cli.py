"""The ``codeeval`` command: tables, plots and per-problem diffs of results files.

    codeeval table results/*.json            # markdown (or --format csv|latex|json): models x benchmarks x pass@k
    codeeval plot results/*.json -o fig.png  # pass@k curves and grouped bars (matplotlib)
    codeeval diff base.json tuned.json       # per-problem changes, with the paired statistics
    codeeval diff --fail-on-regression base.json tuned.json   # exit 1 where the baseline gate would fail

A file argument may be ``LABEL=PATH`` to name its row; otherwise the row is the file's name
without ``.json``. Files with the same label are one row (bigcode-evaluation-harness writes a file
per benchmark). Reads results files written by ``--codeeval-json``, bigcode-evaluation-
harness's metric files (``{"humaneval": {"pass@1": ...}, "config": {...}}``) and evalplus's
``eval_results.json`` (HumanEval+/MBPP+ per-sample verdicts: :mod:`evalplus_results`).

Exit statuses: 0; 1 from ``diff --fail-on-regression`` when B regressed against A; 2 for a usage
error (a bad option, an unreadable file, nothing to show).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_codeeval import __version__, evalplus_results, gate, metrics, stats

METRIC = re.compile(r"^pass@(\d+)$")
NOT_BENCHMARKS = {"format", "config", "summary", "problems", "environment", "complete", "datasets", "gate", "partial",
                  "stopped"}
MISSING = "—"
FORMATS = ("markdown", "csv", "latex", "json")  # codeeval table --format
EVALPLUS_KS = (1, 10, 100)  # the pass@k evalplus reports, where every problem has n >= k


class CliError(Exception):
    """A one-line message for the user; the command exits with status 2."""


@dataclass(frozen=True)
class Scope:
    """What one benchmark's scores in one file cover (as far as the file says)."""

    judged: int | None  # problems judged (None: a file without per-problem records)
    total: int | None  # problems in the benchmark
    n: int | None  # samples per problem (None: not recorded, or it varies)
    partial: bool  # the file says its scores are not the whole benchmark's

    def key(self) -> tuple[int | None, int | None]:
        """What must match for two cells of a column to be compared as like with like."""
        return (self.judged, self.n)

    def describe(self) -> str:
        judged = "? problems" if self.judged is None else f"{self.judged}"
        of = f" of {self.total} problems" if self.total is not None else (" problems" if self.judged is not None else "")
        n = f", n = {self.n}" if self.n is not None else ""
        return f"{judged}{of} judged{n}" + (": partial, not the benchmark's score" if self.partial else "")


@dataclass
class Run:
    """What one results file says."""

    label: str
    path: Path
    scores: dict[str, dict[int, float]]  # benchmark -> k -> pass@k
    intervals: dict[str, dict[int, tuple[float, float]]]  # benchmark -> k -> CI, when recorded
    problems: dict[str, dict[str, tuple[int, int]]]  # benchmark -> task_id -> (n, c)
    order: dict[str, dict[str, int]]  # benchmark -> task_id -> position in the file
    config: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, Any] | None = None
    scopes: dict[str, Scope] = field(default_factory=dict)  # benchmark -> what its scores cover
    origin: str = "codeeval"  # "evalplus": an evalplus eval_results.json (no config recorded)
    # ReCode benchmarks: benchmark -> summary.<benchmark>.robustness as recorded (categories, transformations)
    robustness: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_run(arg: str) -> Run:
    label, sep, path_text = arg.partition("=")
    if not sep or not label or "/" in label:
        label, path_text = "", arg
    path = Path(path_text)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CliError(f"{path}: not a results file ({e})") from None
    if not isinstance(doc, dict):
        raise CliError(f"{path}: not a results file (expected a JSON object)")
    if evalplus_results.looks_like(doc):
        return _evalplus_run(label or _stem(path), path, doc)
    scores: dict[str, dict[int, float]] = {}
    partial = doc.get("partial") if isinstance(doc.get("partial"), dict) else {}
    for key, value in [*doc.items(), *partial.items()]:
        if key in NOT_BENCHMARKS or not isinstance(value, dict):
            continue
        ks = {int(m[1]): float(v) for name, v in value.items() if (m := METRIC.match(name)) and isinstance(v, (int, float))}
        if ks:
            scores[key] = ks
    if not scores:
        raise CliError(f"{path}: no pass@k scores in it")
    intervals: dict[str, dict[int, tuple[float, float]]] = {}
    for bench, block in (doc.get("summary") or {}).items():
        for ci_key, name in (("ci", bench), ("ci_base", f"{bench}-base")):
            for metric, pair in ((block or {}).get(ci_key) or {}).items():
                if (m := METRIC.match(metric)) and isinstance(pair, list) and len(pair) == 2:
                    intervals.setdefault(name, {})[int(m[1])] = (float(pair[0]), float(pair[1]))
    problems: dict[str, dict[str, tuple[int, int]]] = {}
    order: dict[str, dict[str, int]] = {}
    for bench, records in (doc.get("problems") or {}).items():
        if not isinstance(records, dict):
            continue
        problems[bench], order[bench] = {}, {}
        for i, (task_id, r) in enumerate(records.items()):
            problems[bench][task_id] = (int(r["n"]), int(r["c"]))
            order[bench][task_id] = i
            if "c_base" in r:
                problems.setdefault(f"{bench}-base", {})[task_id] = (int(r["n"]), int(r["c_base"]))
                order.setdefault(f"{bench}-base", {})[task_id] = i
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    datasets = doc.get("datasets") if isinstance(doc.get("datasets"), dict) else None
    scopes = {bench: _scope(doc, bench, bench in partial, problems.get(bench), datasets) for bench in scores}
    robust = {bench: block["robustness"] for bench, block in (doc.get("summary") or {}).items()
              if isinstance(block, dict) and isinstance(block.get("robustness"), dict)}
    return Run(label or _stem(path), path, scores, intervals, problems, order, config, datasets, scopes,
               robustness=robust)


def _evalplus_run(label: str, path: Path, doc: dict[str, Any]) -> Run:
    """An evalplus eval_results.json as a run: per-problem (n, c) at the plus level (as
    ``humanevalplus``/``mbppplus``) and the base level (``<name>-base``), pass@k computed from
    them as evalplus does (k in 1, 10, 100 where every problem has n >= k). evalplus judges every
    problem of its dataset, so nothing is partial; how many problems its dataset has is not
    recorded."""
    try:
        found = evalplus_results.read(doc)
    except evalplus_results.EvalplusError as e:
        raise CliError(f"{path}: not a usable evalplus results file: {e}") from None
    run = Run(label, path, {}, {}, {}, {}, origin="evalplus")
    for bench, records in found.records.items():
        levels = ([(bench, "c")] if found.plus else []) + [(f"{bench}-base", "c_base")]
        for name, level in levels:
            counts = {task_id: (r["n"], r[level]) for task_id, r in records.items()}
            ns = {n for n, _ in counts.values()}
            run.scores[name] = {k: metrics.mean_pass_at_k(counts.values(), k) for k in EVALPLUS_KS if k <= min(ns)}
            run.problems[name] = counts
            run.order[name] = {task_id: i for i, task_id in enumerate(records)}
            run.scopes[name] = Scope(len(counts), None, ns.pop() if len(ns) == 1 else None, False)
    return run


def _scope(doc: dict[str, Any], bench: str, partial: bool, records: dict[str, tuple[int, int]] | None,
           datasets: dict[str, Any] | None) -> Scope:
    """A benchmark's scope from its coverage block (files since issue 14), else from its
    per-problem records and dataset size (older files), else unknown (bigcode metric files)."""
    base = bench.removesuffix("-base") if bench.endswith("-base") and bench not in (doc.get("summary") or {}) else bench
    coverage = ((doc.get("summary") or {}).get(base) or {}).get("coverage")
    if isinstance(coverage, dict):
        return Scope(coverage.get("judged"), coverage.get("problems_in_benchmark"),
                     coverage.get("samples_per_problem"), partial or not coverage.get("whole_benchmark", False))
    total = ((datasets or {}).get(base) or {}).get("problems")
    if records:
        ns = {n for n, _ in records.values()}
        judged = len(records)
        return Scope(judged, total, ns.pop() if len(ns) == 1 else None,
                     partial or (isinstance(total, int) and judged < total))
    n = (doc.get("config") or {}).get("n_samples")
    return Scope(None, total, n if isinstance(n, int) else None, partial)


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".json")] if name.endswith(".json") else name


@dataclass
class Row:
    label: str
    runs: list[Run] = field(default_factory=list)
    scores: dict[str, dict[int, float]] = field(default_factory=dict)
    intervals: dict[str, dict[int, tuple[float, float]]] = field(default_factory=dict)
    problems: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)


def rows_of(args: Sequence[str]) -> list[Row]:
    """Rows in the order their labels first appear; a benchmark twice in one row is an error."""
    rows: dict[str, Row] = {}
    for arg in args:
        run = load_run(arg)
        row = rows.setdefault(run.label, Row(run.label))
        for bench in run.scores:
            if bench in row.scores:
                other = next(r.path for r in row.runs if bench in r.scores)
                raise CliError(f"two results for {run.label!r} on {bench}: {other} and {run.path}; "
                               "name the rows: LABEL=PATH")
            row.scores[bench] = run.scores[bench]
            if bench in run.intervals:
                row.intervals[bench] = run.intervals[bench]
            if bench in run.problems:
                row.problems[bench] = run.problems[bench]
            row.scopes[bench] = run.scopes[bench]
        row.runs.append(run)
    return list(rows.values())


def columns_of(rows: Sequence[Row], ks: Sequence[int] | None) -> list[tuple[str, int]]:
    benches = sorted({b for r in rows for b in r.scores}, key=_bench_order)
    out = []
    for b in benches:
        present = sorted({k for r in rows for k in r.scores.get(b, {})})
        out += [(b, k) for k in present if ks is None or k in ks]
    return out


def _bench_order(name: str) -> tuple[str, int]:
    return (name.removesuffix("-base"), name.endswith("-base"))


def marks_of(rows: Sequence[Row], cols: Sequence[tuple[str, int]]) -> dict[tuple[str, str], str]:
    """(row label, benchmark) -> a note, for every cell whose coverage is not like the rest of its
    column: a partial score, or fewer problems or another n than the column's usual. Cells
    whose files record nothing about coverage (bigcode metric files) are marked only when
    their file says how many samples it drew and that differs."""
    marks: dict[tuple[str, str], str] = {}
    for bench in sorted({b for b, _ in cols}, key=_bench_order):
        scopes = {row.label: row.scopes[bench] for row in rows if bench in row.scopes}
        known = [s.key() for s in scopes.values() if s.judged is not None or s.n is not None]
        usual = max(dict.fromkeys(known), key=known.count) if known else None
        for label, scope in scopes.items():
            differs = (scope.judged is not None or scope.n is not None) and scope.key() != usual
            if scope.partial or (differs and len(scopes) > 1):
                marks[label, bench] = f"{label} on {bench}: {scope.describe()}"
    return marks


def _letters(marks: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    return {key: f"({chr(ord('a') + i)})" if i < 26 else f"({i + 1})" for i, key in enumerate(marks)}


# -- table --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One row's value in one column, with what the renderers need."""

    value: float | None  # None: not measured
    interval: tuple[float, float] | None  # the recorded 95% CI, if any
    mark: str | None  # "(a)": its coverage is unlike its column's (the note says how)


@dataclass
class Table:
    """The cells of ``codeeval table`` before they are written in one format or another."""

    columns: list[tuple[str, int]]  # (benchmark, k)
    rows: list[Row]
    cells: list[list[Cell]]  # one list per row, one cell per column
    marks: dict[tuple[str, str], str]  # (row label, benchmark) -> note
    letters: dict[tuple[str, str], str]  # (row label, benchmark) -> "(a)"

    def row_notes(self, row: Row) -> list[str]:
        """``(a) note`` for each of the row's marked cells, in the order of the notes."""
        return [f"{self.letters[key]} {note}" for key, note in self.marks.items() if key[0] == row.label]


def tabulate(rows: Sequence[Row], ks: Sequence[int] | None = None) -> Table:
    cols = columns_of(rows, ks)
    if not cols:
        raise CliError("no pass@k to tabulate (check --k)")
    marks = marks_of(rows, cols)
    letters = _letters(marks)
    cells = []
    for row in rows:
        values = [row.scores.get(b, {}).get(k) for b, k in cols]
        cells.append([Cell(v, row.intervals.get(b, {}).get(k), letters.get((row.label, b)) if v is not None else None)
                      for (b, k), v in zip(cols, values)])
    return Table(cols, list(rows), cells, marks, letters)


def table(rows: Sequence[Row], ks: Sequence[int] | None = None, percent: bool = True, ci: bool = False,
          digits: int = 1, style: str = "markdown") -> str:
    """A table in the layout of a paper's results table: a row per model, a column per benchmark
    and pass@k, values in percent (or fractions), a dash where not measured; cells whose coverage
    is unlike the rest of their column marked (a), (b), ... with a note each. ``style``: one of
    :data:`FORMATS` (json carries the fractions as recorded, every interval, and the marks and
    notes as fields; ``percent``, ``ci`` and ``digits`` shape the text formats only). Files of
    ReCode's benchmarks add their robustness metrics per category: a second markdown table, or
    ``robustness`` in json (csv and latex hold pass@k only)."""
    data = tabulate(rows, ks)
    if style == "json":
        return _json_table(data)
    scale, fmt = (100.0, f"{{:.{digits}f}}") if percent else (1.0, f"{{:.{digits + 2}f}}")

    def number(value: float) -> str:
        return fmt.format(value * scale)

    if style == "csv":
        return _csv_table(data, number, ci)
    if style == "latex":
        return _latex_table(data, number, ci)
    if style != "markdown":
        raise CliError(f"unknown table format {style!r}; one of {', '.join(FORMATS)}")

    def cell(c: Cell) -> str:
        if c.value is None:
            return MISSING
        text = number(c.value)
        if ci and c.interval is not None:
            text += f" ({number(c.interval[0])}–{number(c.interval[1])})"
        return f"{text} {c.mark}" if c.mark else text

    lines = ["| dataset | " + " | ".join(b for b, _ in data.columns) + " |",
             "|---|" + "---|" * len(data.columns),
             "| metric | " + " | ".join(f"pass@{k}" for _, k in data.columns) + " |"]
    for row, cells in zip(data.rows, data.cells):
        lines.append(f"| {row.label} | " + " | ".join(cell(c) for c in cells) + " |")
    if data.marks:  # the cells not comparable with their column, said under the table
        lines.append("")
        lines += [f"{data.letters[key]} {note}  " for key, note in data.marks.items()]
    robust = robustness_table(rows, ks)
    if robust is not None:
        header, body = robust
        scale = 100.0 if percent else 1.0

        def value(v: Any) -> str:
            return MISSING if v is None else f"{v * scale:.{digits if percent else digits + 2}f}"

        lines += ["", "ReCode robustness: RP_s@k correct on all s perturbed prompts of a problem (worst case), "
                  "RD_s@k and RR_s@k against the category's nominal pass@k" + (" (percent)" if percent else ""), "",
                  "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        lines += ["| " + " | ".join([*r[:4], *(value(v) for v in r[4:])]) + " |" for r in body]
    return "\n".join(lines)


ROBUST_METRICS = ("pass", "robust_pass", "robust_drop", "robust_relative")
ROBUST_PASS = re.compile(r"^robust_pass@(\d+)$")


def robustness_table(rows: Sequence[Row], ks: Sequence[int] | None) -> tuple[list[str], list[list[Any]]] | None:
    """ReCode's metrics recorded in the files, one row per (model, benchmark, category): the
    header, and rows of 4 labels (model, benchmark, category, s) and then, for each k, pass@k,
    RP_s@k, RD_s@k, RR_s@k as recorded (fractions; None where not recorded). None: no file has any."""
    blocks = [(row.label, bench, block) for row in rows for run in row.runs for bench, block in run.robustness.items()]
    if not blocks:
        return None
    present = sorted({int(m[1]) for _, _, b in blocks for cat in (b.get("categories") or {}).values()
                      for key in cat if (m := ROBUST_PASS.match(key))})
    shown = [k for k in present if ks is None or k in ks]
    header = ["model", "benchmark", "category", "s"]
    for k in shown:
        header += [f"pass@{k}", f"RP_s@{k}", f"RD_s@{k}", f"RR_s@{k}"]
    body = []
    for label, bench, block in blocks:
        for category, scores in (block.get("categories") or {}).items():
            cells: list[Any] = [label, bench, category, str(scores.get("s", MISSING))]
            cells += [scores.get(f"{m}@{k}") for k in shown for m in ROBUST_METRICS]
            body.append(cells)
    return header, body


def robustness_bars(rows: Sequence[Row]) -> tuple[list[tuple[str, str]], dict[tuple[str, str, str], tuple[float, float]]] | None:
    """What ``codeeval plot`` draws of ReCode's metrics: the (benchmark, category) groups in the
    order first met, and (model, benchmark, category) -> (nominal pass@1, robust pass_s@1).
    None: no file records them at k = 1."""
    groups: dict[tuple[str, str], None] = {}
    values: dict[tuple[str, str, str], tuple[float, float]] = {}
    for row in rows:
        for run in row.runs:
            for bench, block in run.robustness.items():
                for category, scores in (block.get("categories") or {}).items():
                    nominal, robust = scores.get("pass@1"), scores.get("robust_pass@1")
                    if isinstance(nominal, (int, float)) and isinstance(robust, (int, float)):
                        groups.setdefault((bench, category))
                        values[row.label, bench, category] = (float(nominal), float(robust))
    return (list(groups), values) if values else None


def _csv_table(data: Table, number: Callable[[float], str], ci: bool) -> str:
    """One header row (``humaneval pass@1``, ...), numbers without marks so that they stay
    numbers, an empty field where not measured, and a last ``notes`` column holding the row's
    marked cells' notes (``(a) six on humaneval: ...``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["model"]
    for b, k in data.columns:
        header.append(f"{b} pass@{k}")
        if ci:
            header += [f"{b} pass@{k} ci_low", f"{b} pass@{k} ci_high"]
    writer.writerow([*header, "notes"])
    for row, cells in zip(data.rows, data.cells):
        fields = [row.label]
        for c in cells:
            fields.append("" if c.value is None else number(c.value))
            if ci:
                fields += ["", ""] if c.interval is None else [number(c.interval[0]), number(c.interval[1])]
        writer.writerow([*fields, "; ".join(data.row_notes(row))])
    return out.getvalue().rstrip("\n")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_table(data: Table, number: Callable[[float], str], ci: bool) -> str:
    """A booktabs tabular: benchmarks as column groups over their pass@k, marks as superscripts,
    the notes in small type under it."""
    groups: list[tuple[str, int]] = []  # (benchmark, columns), in column order
    for b, _ in data.columns:
        if groups and groups[-1][0] == b:
            groups[-1] = (b, groups[-1][1] + 1)
        else:
            groups.append((b, 1))
    lines = [r"% needs \usepackage{booktabs}",
             r"\begin{tabular}{l" + "".join("r" * width for _, width in groups) + "}", r"\toprule"]
    lines.append(" & " + " & ".join(rf"\multicolumn{{{w}}}{{c}}{{{_latex(b)}}}" for b, w in groups) + r" \\")
    rules, first = [], 2
    for _, width in groups:
        rules.append(rf"\cmidrule(lr){{{first}-{first + width - 1}}}")
        first += width
    lines.append(" ".join(rules))
    lines.append("model & " + " & ".join(f"pass@{k}" for _, k in data.columns) + r" \\")
    lines.append(r"\midrule")

    def cell(c: Cell) -> str:
        if c.value is None:
            return "---"
        text = number(c.value)
        if ci and c.interval is not None:
            text += f" ({number(c.interval[0])}--{number(c.interval[1])})"
        return text + (rf"\textsuperscript{{{c.mark}}}" if c.mark else "")

    for row, cells in zip(data.rows, data.cells):
        lines.append(_latex(row.label) + " & " + " & ".join(cell(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if data.marks:
        lines += ["", r"\smallskip", r"{\footnotesize"]
        lines += [f"{data.letters[key]} {_latex(note)}\\par" for key, note in data.marks.items()]
        lines.append("}")
    return "\n".join(lines)


def _json_table(data: Table) -> str:
    """The table as data: columns, rows of cells (the recorded fraction, interval, coverage, and
    the mark and its note where the cell is marked), and the notes."""

    def coverage(scope: Scope | None) -> dict[str, Any] | None:
        if scope is None:
            return None
        return {"judged": scope.judged, "problems_in_benchmark": scope.total, "samples_per_problem": scope.n,
                "partial": scope.partial}

    rows = []
    for row, cells in zip(data.rows, data.cells):
        rows.append({
            "label": row.label,
            "files": [str(run.path) for run in row.runs],
            "cells": [{"benchmark": b, "metric": f"pass@{k}", "k": k, "value": c.value,
                       "ci": list(c.interval) if c.interval is not None else None,
                       "coverage": coverage(row.scopes.get(b)) if c.value is not None else None,
                       "mark": c.mark, "note": data.marks.get((row.label, b)) if c.mark else None}
                      for (b, k), c in zip(data.columns, cells)],
        })
    doc = {
        "columns": [{"benchmark": b, "metric": f"pass@{k}", "k": k} for b, k in data.columns],
        "rows": rows,
        "notes": [{"mark": data.letters[key], "row": key[0], "benchmark": key[1], "note": note}
                  for key, note in data.marks.items()],
    }
    robust = {row.label: {bench: block for run in row.runs for bench, block in run.robustness.items()}
              for row in data.rows}
    if any(robust.values()):  # ReCode's benchmarks: their recorded metrics, as recorded
        doc["robustness"] = {label: blocks for label, blocks in robust.items() if blocks}
    return json.dumps(doc, indent=2, ensure_ascii=False)


# -- plot ---------------------------------------------------------------------------------------
def curve(problems: dict[str, tuple[int, int]], points: int = 24) -> tuple[list[int], list[float], list[tuple[float, float]]]:
    """pass@k for k from 1 to the smallest n, on a log-spaced grid, with bootstrap intervals."""
    counts = list(problems.values())
    n = min(n for n, _ in counts)
    ks = sorted({max(1, min(n, round(10 ** (i * math.log10(n) / max(1, points - 1))))) for i in range(points)})
    values = [metrics.mean_pass_at_k(counts, k) for k in ks]
    bands = [stats.pass_at_k_ci(counts, k, resamples=500) for k in ks]
    return ks, values, bands


def plot(rows: Sequence[Row], output: Path, ks: Sequence[int] | None = None, title: str | None = None) -> None:
    """pass@k curves per benchmark (a line per model, from per-problem records where the file has
    them, else through the reported points) over grouped bars of every reported pass@k."""
    try:
        import matplotlib
    except ImportError:
        raise CliError("codeeval plot needs matplotlib: pip install 'pytest-codeeval[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    cols = columns_of(rows, ks)
    if not cols:
        raise CliError("no pass@k to plot (check --k)")
    benches = sorted({b for b, _ in cols}, key=_bench_order)
    marks = marks_of(rows, cols)
    letters = _letters(marks)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = max(8.0, 3.6 * len(benches))
    robust = robustness_bars(rows)
    panels = 3 if robust else 2
    fig = plt.figure(figsize=(width, 4.25 * panels), layout="constrained")
    grid = fig.add_gridspec(panels, len(benches), height_ratios=[1] * panels)
    for j, bench in enumerate(benches):
        ax = fig.add_subplot(grid[0, j])
        for i, row in enumerate(rows):
            color = colors[i % len(colors)]
            mark = letters.get((row.label, bench))
            label = f"{row.label} {mark}" if mark else row.label  # coverage unlike the others': see the notes
            if row.problems.get(bench):
                xs, ys, bands = curve(row.problems[bench])
                ax.plot(xs, ys, "--" if mark else "-", color=color, label=label)
                ax.fill_between(xs, [b[0] for b in bands], [b[1] for b in bands], color=color, alpha=0.15, linewidth=0)
            reported = sorted(row.scores.get(bench, {}).items())
            if reported:
                ax.plot([k for k, _ in reported], [v for _, v in reported], "o",
                        color=color, label=None if row.problems.get(bench) else label,
                        linestyle="none" if row.problems.get(bench) else "--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(f"{bench}: pass@k")
        ax.set_xlabel("k (samples drawn)")
        ax.set_ylabel("pass@k")
        ax.set_ylim(0, 1.02)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    ax = fig.add_subplot(grid[1, :])
    group = 0.8
    bar = group / max(1, len(rows))
    for i, row in enumerate(rows):
        xs, heights, errors = [], [], []  # errors: (x, value, low, high) where an interval is known
        hatches = []  # a hatched bar: its coverage differs from its column's (a partial score, say)
        for x, (bench, k) in enumerate(cols):
            value = row.scores.get(bench, {}).get(k)
            if value is None:
                continue
            hatches.append("//" if (row.label, bench) in marks else "")
            interval = row.intervals.get(bench, {}).get(k)
            if interval is None and row.problems.get(bench) and k <= min(n for n, _ in row.problems[bench].values()):
                interval = stats.pass_at_k_ci(list(row.problems[bench].values()), k)
            xs.append(x - group / 2 + bar * (i + 0.5))
            heights.append(value)
            if interval is not None:
                errors.append((xs[-1], value, value - interval[0], interval[1] - value))
        bars = ax.bar(xs, heights, bar * 0.95, label=row.label, color=colors[i % len(colors)], hatch=hatches,
                      edgecolor="white" if any(hatches) else None)
        if errors:  # no bar without a recorded interval gets a made-up one
            ax.errorbar([e[0] for e in errors], [e[1] for e in errors], yerr=[[e[2] for e in errors], [e[3] for e in errors]],
                        fmt="none", ecolor="black", elinewidth=1, capsize=3, alpha=0.8)
        ax.bar_label(bars, labels=[f"{100 * h:.1f}" for h in heights], label_type="center", fontsize="small",
                     color="white", fontweight="bold")
    ax.set_xticks(range(len(cols)), [f"{b}\npass@{k}" for b, k in cols])
    ax.set_ylabel("pass@k (bars: 95% CI over problems)")
    ax.set_ylim(0, 1.08)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncols=min(4, len(rows)), loc="upper left")
    if marks:
        ax.set_xlabel("hatched: " + "; ".join(f"{letters[key]} {note}" for key, note in marks.items()),
                      fontsize="small", wrap=True)
    if robust:  # ReCode: robust pass@1 per category (bars) against the nominal pass@1 (outlines)
        groups, values = robust
        ax = fig.add_subplot(grid[2, :])
        bar = group / max(1, len(rows))
        for i, row in enumerate(rows):
            color = colors[i % len(colors)]
            for x, key in enumerate(groups):
                if (row.label, *key) not in values:
                    continue
                nominal, robust_pass = values[row.label, *key]
                where = x - group / 2 + bar * (i + 0.5)
                drawn = ax.bar([where], [robust_pass], bar * 0.95, color=color, label=row.label if x == 0 else None)
                ax.bar([where], [nominal], bar * 0.95, fill=False, edgecolor=color, linestyle="--")
                ax.bar_label(drawn, labels=[f"{100 * robust_pass:.1f}"], label_type="edge", fontsize="small")
        ax.set_xticks(range(len(groups)), [f"{c}\n{b.removeprefix('recode-')}" for b, c in groups])
        ax.set_ylabel("ReCode: robust pass_s@1 (dashed: nominal pass@1)")
        ax.set_ylim(0, 1.08)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small", ncols=min(4, len(rows)), loc="upper left")
    if title:
        fig.suptitle(title)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)


# -- diff ---------------------------------------------------------------------------------------
def diff(a: Run, b: Run, alpha: float = 0.05, show_all: bool = False) -> str:
    """Per-problem changes from ``a`` to ``b``, worst first, with the aggregate paired statistics
    the baseline gate uses (pass@1)."""
    out = []
    unrecorded = [run for run in (a, b) if run.origin == "evalplus"]
    if unrecorded:  # nothing to compare: say so rather than list every key of the other side
        out.append("note: evaluation settings not compared: " + ", ".join(str(r.path) for r in unrecorded)
                   + " (evalplus eval_results.json) records none")
    else:
        differences = gate.config_differences(a.config, b.config)
        if differences:
            out.append("warning: evaluation settings differ: " + "; ".join(differences))
    shared = _shared_benchmarks(a, b)
    for bench in shared:
        fa = ((a.datasets or {}).get(bench) or {}).get("fingerprint")
        fb = ((b.datasets or {}).get(bench) or {}).get("fingerprint")
        pa, pb = a.problems[bench], b.problems[bench]
        tasks = sorted(set(pa) & set(pb), key=lambda t: a.order[bench][t])
        out.append("")
        out.append(f"{bench}: {len(tasks)} problems in both ({a.label} -> {b.label})")
        sa, sb = a.scopes.get(bench), b.scopes.get(bench)
        if sa is not None and sb is not None and (sa.key() != sb.key() or sa.partial or sb.partial):
            # the aggregate below is over the problems both judged, never either file's own score
            out.append(f"  coverage differs: {a.label} {sa.describe()}; {b.label} {sb.describe()}; "
                       f"compared on the {len(tasks)} problems both judged")
        if fa and fb and fa != fb:
            out.append(f"  warning: the {bench} data differ (fingerprints {fa[:19]} vs {fb[:19]})")
        if not tasks:
            continue
        ca, cb = [pa[t] for t in tasks], [pb[t] for t in tasks]
        d = stats.paired_differences(cb, ca)
        lo, hi = stats.bootstrap_ci(d)
        before, after = metrics.mean_pass_at_k(ca, 1), metrics.mean_pass_at_k(cb, 1)
        worse, better = stats.sign_flip_test(d), stats.sign_flip_test([-x for x in d])
        out.append(f"  pass@1 {before:.4f} -> {after:.4f} ({after - before:+.4f}, 95% CI {lo:+.4f} to {hi:+.4f}; "
                   f"one-sided sign-flip p: worse {worse:.2g}, better {better:.2g})")
        level = alpha / 2 / len(tasks)  # two one-sided tests per problem
        rows = []
        for t, x in zip(tasks, d):
            (na, ka), (nb, kb) = pa[t], pb[t]
            p_worse, p_better = stats.fisher_worse(kb, nb, ka, na), stats.fisher_worse(ka, na, kb, nb)
            mark = "*" if min(p_worse, p_better) < level else ""
            rows.append((x, t, f"{ka}/{na}", f"{kb}/{nb}", mark))
        changed = [r for r in rows if abs(r[0]) > 1e-12]
        out.append(f"  changed {len(changed)}: {sum(r[0] < 0 for r in rows)} worse "
                   f"({sum(r[0] < 0 and r[4] == '*' for r in rows)} significantly), "
                   f"{sum(r[0] > 0 for r in rows)} better ({sum(r[0] > 0 and r[4] == '*' for r in rows)} significantly); "
                   f"newly unsolved {sum(pa[t][1] > 0 and pb[t][1] == 0 for t in tasks)}, "
                   f"newly solved {sum(pa[t][1] == 0 and pb[t][1] > 0 for t in tasks)}")
        shown = rows if show_all else changed
        shown = sorted(shown, key=lambda r: (round(r[0], 9), a.order[bench][r[1]]))
        if shown:
            width = max(len("task_id"), *(len(r[1]) for r in shown))
            out.append(f"  {'task_id':<{width}}  {a.label[:12]:>12}  {b.label[:12]:>12}  change")
            for x, t, sa, sb, mark in shown:
                out.append(f"  {t:<{width}}  {sa:>12}  {sb:>12}  {x:+.2f} {mark}".rstrip())
            out.append(f"  * significant: per-problem Fisher exact test, two-sided, Bonferroni over {len(tasks)} problems "
                       f"at alpha {alpha:g}")
        only_a, only_b = len(set(pa) - set(pb)), len(set(pb) - set(pa))
        if only_a or only_b:
            out.append(f"  not compared: {only_a} problem(s) only in {a.label}, {only_b} only in {b.label}")
    return "\n".join(out).lstrip("\n")


def _shared_benchmarks(a: Run, b: Run) -> list[str]:
    """The benchmarks with per-problem records in both runs (their plus level for HumanEval+/MBPP+)."""
    shared = [x for x in sorted(set(a.problems) & set(b.problems), key=_bench_order) if not x.endswith("-base")]
    if not shared:
        raise CliError(f"no benchmark with per-problem records in both {a.path} and {b.path}")
    return shared


def regression_check(a: Run, b: Run, alpha: float = 0.05, tolerance: float = 0.0) -> list[gate.BenchmarkComparison]:
    """The baseline gate's decision with ``a`` as the baseline and ``b`` as the candidate, over the
    problems both judged: per benchmark, the one-sided sign-flip test of the pass@1 differences at
    alpha / 2 (Bonferroni over benchmarks) and each problem's one-sided Fisher test at alpha / 2
    (Bonferroni over every problem compared), a drop beyond ``tolerance`` needed (gate.py,
    docs/statistics.md). Empty when no problem is in both."""
    pairs = [(bench, t) for bench in _shared_benchmarks(a, b)
             for t in sorted(set(a.problems[bench]) & set(b.problems[bench]), key=lambda t: a.order[bench][t])]
    verdicts = []
    for bench, t in pairs:
        (n_base, c_base), (n, c) = a.problems[bench][t], b.problems[bench][t]
        record = {"benchmark": bench, "task_id": t, "index": a.order[bench][t], "n": n, "c": c}
        verdicts.append(gate.judge_pair(record, {"n": n_base, "c": c_base}, alpha, tolerance, len(pairs)))
    return gate.compare(verdicts, alpha, tolerance)


def regression_lines(a: Run, b: Run, comparisons: Sequence[gate.BenchmarkComparison]) -> tuple[list[str], bool]:
    """What ``diff --fail-on-regression`` says last, and whether B regressed (or nothing was compared)."""
    if not comparisons:
        return [f"regression check FAILED: no problem judged in both {a.label} and {b.label}"], True
    bad = [c for c in comparisons if c.regressed]
    if bad:
        return [f"regression check FAILED: {b.label} regressed against {a.label}: "
                + "; ".join(c.describe() for c in bad)], True
    return [f"regression check passed: no regression of {b.label} against {a.label}: "
            + "; ".join(c.describe() for c in comparisons)], False


# -- entry point --------------------------------------------------------------------------------
def _ks(text: str) -> list[int]:
    try:
        values = sorted({int(p) for p in text.replace(" ", ",").split(",") if p})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected k values such as 1,10,100, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected k values such as 1,10,100, got {text!r}")
    return values


def _fraction(what: str, zero_ok: bool) -> Callable[[str], float]:
    """An argparse type: a number below 1 and above 0 (or from 0, ``zero_ok``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (0 <= value if zero_ok else 0 < value) or not value < 1:
            raise argparse.ArgumentTypeError(f"expected {what} between 0 and 1, got {text!r}")
        return value

    return parse


_tolerance = _fraction("a pass@1 drop", zero_ok=True)
_alpha = _fraction("a level", zero_ok=False)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codeeval", description="Tables, plots and diffs of pytest-codeeval results files "
                                "(and of bigcode-evaluation-harness's and evalplus's).")
    p.add_argument("--version", action="version", version=f"pytest-codeeval {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="a table: models x benchmarks x pass@k (markdown, csv, latex or json)")
    t.add_argument("files", nargs="+", metavar="[LABEL=]RESULTS.json")
    t.add_argument("--format", choices=FORMATS, default="markdown",
                   help="markdown (the default), csv, latex (booktabs) or json (fractions as recorded, "
                        "intervals, coverage and marks as fields)")
    t.add_argument("--k", type=_ks, help="only these k (default: every k reported)")
    t.add_argument("--fraction", action="store_true", help="fractions (0.4970) instead of percent (49.7)")
    t.add_argument("--ci", action="store_true", help="add the 95%% confidence interval where recorded")
    t.add_argument("--digits", type=int, default=1, help="decimals of percent values (default 1)")
    g = sub.add_parser("plot", help="pass@k curves and grouped bars, as an image")
    g.add_argument("files", nargs="+", metavar="[LABEL=]RESULTS.json")
    g.add_argument("-o", "--output", type=Path, required=True, help="image file (.png, .svg, .pdf)")
    g.add_argument("--k", type=_ks, help="bars for these k only (default: every k reported)")
    g.add_argument("--title")
    d = sub.add_parser("diff", help="per-problem changes from A to B",
                       description="Per-problem changes from A to B. Exit status 0; with --fail-on-regression "
                                   "1 when B regressed against A by the baseline gate's tests; 2 on a usage error.")
    d.add_argument("a", metavar="[LABEL=]A.json")
    d.add_argument("b", metavar="[LABEL=]B.json")
    d.add_argument("--all", action="store_true", help="list unchanged problems too")
    d.add_argument("--alpha", type=_alpha, default=0.05,
                   help="family-wise level of the per-problem marks and of --fail-on-regression (default 0.05)")
    d.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when B regressed against A as the baseline gate decides (A the baseline): "
                        "the aggregate sign-flip test or any problem's Fisher test, sharing --alpha")
    d.add_argument("--tolerance", type=_tolerance, default=0.0, metavar="DROP",
                   help="with --fail-on-regression: pass@1 drops up to this much are no regression (default 0)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    status = 0
    try:
        if args.command == "table":
            print(table(rows_of(args.files), args.k, percent=not args.fraction, ci=args.ci, digits=args.digits,
                        style=args.format))
        elif args.command == "plot":
            plot(rows_of(args.files), args.output, args.k, args.title)
            print(f"wrote {args.output}")
        else:
            a, b = load_run(args.a), load_run(args.b)
            if a.label == b.label:
                a.label, b.label = "A", "B"
            print(diff(a, b, args.alpha, args.all))
            if args.fail_on_regression:
                lines, regressed = regression_lines(a, b, regression_check(a, b, args.alpha, args.tolerance))
                print("\n".join(lines))
                status = 1 if regressed else 0
    except CliError as e:
        print(f"codeeval {args.command}: error: {e}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
