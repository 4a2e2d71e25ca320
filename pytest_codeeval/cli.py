"""The ``codeeval`` command: tables, plots and per-problem diffs of results files.

    codeeval table results/*.json            # markdown: models x benchmarks x pass@k
    codeeval plot results/*.json -o fig.png  # pass@k curves and grouped bars (matplotlib)
    codeeval diff base.json tuned.json       # per-problem changes, with the paired statistics

A file argument may be ``LABEL=PATH`` to name its row; otherwise the row is the file's name
without ``.json``. Files with the same label are one row (bigcode-evaluation-harness writes a file
per benchmark). Reads results files written by ``--codeeval-json`` and bigcode-evaluation-
harness's metric files (``{"humaneval": {"pass@1": ...}, "config": {...}}``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_codeeval import gate, metrics, stats

METRIC = re.compile(r"^pass@(\d+)$")
NOT_BENCHMARKS = {"config", "summary", "problems", "environment", "complete", "datasets", "gate", "partial", "stopped"}
MISSING = "—"


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
    return Run(label or _stem(path), path, scores, intervals, problems, order, config, datasets, scopes)


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
def table(rows: Sequence[Row], ks: Sequence[int] | None = None, percent: bool = True, ci: bool = False,
          digits: int = 1) -> str:
    """A markdown table in the layout of a paper's results table: a row per model, a column per
    benchmark and pass@k, values in percent (or fractions), a dash where not measured."""
    cols = columns_of(rows, ks)
    if not cols:
        raise CliError("no pass@k to tabulate (check --k)")
    scale, fmt = (100.0, f"{{:.{digits}f}}") if percent else (1.0, f"{{:.{digits + 2}f}}")
    marks = marks_of(rows, cols)
    letters = _letters(marks)

    def cell(row: Row, bench: str, k: int) -> str:
        value = row.scores.get(bench, {}).get(k)
        if value is None:
            return MISSING
        text = fmt.format(value * scale)
        interval = row.intervals.get(bench, {}).get(k)
        if ci and interval is not None:
            text += f" ({fmt.format(interval[0] * scale)}–{fmt.format(interval[1] * scale)})"
        mark = letters.get((row.label, bench))
        return f"{text} {mark}" if mark else text

    lines = ["| dataset | " + " | ".join(b for b, _ in cols) + " |",
             "|---|" + "---|" * len(cols),
             "| metric | " + " | ".join(f"pass@{k}" for _, k in cols) + " |"]
    for row in rows:
        lines.append(f"| {row.label} | " + " | ".join(cell(row, b, k) for b, k in cols) + " |")
    if marks:  # the cells not comparable with their column, said under the table
        lines.append("")
        lines += [f"{letters[key]} {note}  " for key, note in marks.items()]
    return "\n".join(lines)


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
        raise CliError("codeeval plot needs matplotlib: pip install 'pytest-codeeval[report]'") from None
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
    fig = plt.figure(figsize=(width, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, len(benches), height_ratios=[1, 1])
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
    differences = gate.config_differences(a.config, b.config)
    if differences:
        out.append("warning: evaluation settings differ: " + "; ".join(differences))
    shared = [x for x in sorted(set(a.problems) & set(b.problems), key=_bench_order) if not x.endswith("-base")]
    if not shared:
        raise CliError(f"no benchmark with per-problem records in both {a.path} and {b.path}")
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


# -- entry point --------------------------------------------------------------------------------
def _ks(text: str) -> list[int]:
    try:
        values = sorted({int(p) for p in text.replace(" ", ",").split(",") if p})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected k values such as 1,10,100, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected k values such as 1,10,100, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codeeval", description="Tables, plots and diffs of pytest-codeeval results files.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="markdown table: models x benchmarks x pass@k")
    t.add_argument("files", nargs="+", metavar="[LABEL=]RESULTS.json")
    t.add_argument("--k", type=_ks, help="only these k (default: every k reported)")
    t.add_argument("--fraction", action="store_true", help="fractions (0.4970) instead of percent (49.7)")
    t.add_argument("--ci", action="store_true", help="add the 95%% confidence interval where recorded")
    t.add_argument("--digits", type=int, default=1, help="decimals of percent values (default 1)")
    g = sub.add_parser("plot", help="pass@k curves and grouped bars, as an image")
    g.add_argument("files", nargs="+", metavar="[LABEL=]RESULTS.json")
    g.add_argument("-o", "--output", type=Path, required=True, help="image file (.png, .svg, .pdf)")
    g.add_argument("--k", type=_ks, help="bars for these k only (default: every k reported)")
    g.add_argument("--title")
    d = sub.add_parser("diff", help="per-problem changes from A to B")
    d.add_argument("a", metavar="[LABEL=]A.json")
    d.add_argument("b", metavar="[LABEL=]B.json")
    d.add_argument("--all", action="store_true", help="list unchanged problems too")
    d.add_argument("--alpha", type=float, default=0.05, help="family-wise level of the per-problem marks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "table":
            print(table(rows_of(args.files), args.k, percent=not args.fraction, ci=args.ci, digits=args.digits))
        elif args.command == "plot":
            plot(rows_of(args.files), args.output, args.k, args.title)
            print(f"wrote {args.output}")
        else:
            a, b = load_run(args.a), load_run(args.b)
            if a.label == b.label:
                a.label, b.label = "A", "B"
            print(diff(a, b, args.alpha, args.all))
    except CliError as e:
        print(f"codeeval {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
