"""Turning per-problem records into what people read: the failure report of one item, the
terminal summary, and the JSON results file.

The records arrive through test reports' ``user_properties``, so the same code aggregates a
serial run and an xdist run (whose reports are replayed on the controller).
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_codeeval import excerpt, metrics, robustness, stats
from pytest_codeeval.coverage import SKIPPED, Coverage
from pytest_codeeval.problem import ProblemResult, printable

PROPERTY = "codeeval"  # user_properties key of a judged problem's record
# The results file's layout version, its top-level "format". Raised when a change would make a
# reader of the previous layout misread a file (a key renamed, moved or given another meaning);
# keys added alongside keep it. SCHEMA describes this version (JSON Schema, shipped in the package).
RESULTS_FORMAT = 1
SCHEMA = Path(__file__).with_name("results.schema.json")
PROGRAM_LINES = 40  # of the failing program shown in a failure report


def format_failure(result: ProblemResult) -> str:
    """The failure report of an item: its first failing sample, program and cause."""
    i = result.first_failure
    assert i is not None
    sample = result.results[i]
    counts = Counter(r.outcome.value for r in result.results)
    outcomes = ", ".join(f"{o}: {k}" for o, k in counts.most_common())
    lines = [
        f"{result.problem.task_id}: 0 of {result.n} samples passed ({outcomes})",
        f"first failing sample (#{i}): {sample.outcome.value}"
        + (f": {sample.detail}" if sample.detail else ""),
        # the lines its diagnostics cite, quoted from this problem's own tests and program
        *excerpt.report_lines(result, i),
        "",
        "---- program ----",
    ]
    # the program is the model's text: its control characters are shown escaped, never sent to
    # the terminal (the sandbox's verdict texts already are)
    program = printable(result.programs[i].rstrip("\n")).split("\n")
    if len(program) > PROGRAM_LINES:
        program = program[:PROGRAM_LINES] + [f"... ({len(program) - PROGRAM_LINES} more lines)"]
    lines += program
    if sample.traceback:
        lines += ["---- traceback (tail) ----", sample.traceback.rstrip("\n")]
    for name, text in (("stdout", sample.stdout), ("stderr", sample.stderr)):
        if text.strip():
            lines += [f"---- {name} (tail) ----", text[-2000:].rstrip("\n")]
    return "\n".join(lines)


@dataclass
class BenchmarkTally:
    """What a run judged of one benchmark."""

    problems: dict[str, dict[str, Any]] = field(default_factory=dict)  # task_id -> record

    def ordered(self) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self.problems.items(), key=lambda kv: (kv[1].get("index", 0), kv[0]))

    @property
    def has_base(self) -> bool:
        """Two-level benchmarks (HumanEval+, MBPP+) also report their base tests alone."""
        return any("c_base" in r for r in self.problems.values())

    def scores(self, ks: Sequence[int], level: str = "c") -> tuple[dict[str, float], list[int]]:
        """pass@k for every k all problems support, and the ks left out. ``level`` is the
        record's count to use: "c" (all checks) or "c_base" (the base tests)."""
        counts = [(r["n"], r[level]) for _, r in self.ordered()]
        kept, dropped = metrics.computable_ks(ks, (n for n, _ in counts))
        if not counts:
            return {}, list(ks)
        return {f"pass@{k}": metrics.mean_pass_at_k(counts, k) for k in kept}, dropped

    def intervals(self, ks: Sequence[int], level: str = "c") -> dict[str, tuple[float, float]]:
        """The confidence interval of every pass@k that :meth:`scores` reports (bootstrap over
        problems, in dataset order with a fixed seed: reproducible, serial or xdist)."""
        counts = [(r["n"], r[level]) for _, r in self.ordered()]
        kept, _ = metrics.computable_ks(ks, (n for n, _ in counts))
        if not counts:
            return {}
        return {f"pass@{k}": stats.pass_at_k_ci(counts, k) for k in kept}


class Results:
    """Collects the per-problem records of a run, by benchmark."""

    def __init__(self) -> None:
        self.benchmarks: dict[str, BenchmarkTally] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        tally = self.benchmarks.setdefault(record["benchmark"], BenchmarkTally())
        tally.problems[record["task_id"]] = dict(record)

    def judged(self, benchmark: str) -> dict[str, int]:
        """task id -> samples judged, for :mod:`coverage`."""
        tally = self.benchmarks.get(benchmark)
        return {t: r["n"] for t, r in tally.ordered()} if tally else {}

    def summary_lines(self, ks: Sequence[int], coverage: Mapping[str, Coverage] | None = None) -> list[str]:
        """The terminal table, with notes; ``coverage`` (benchmark -> what the run covered) adds a
        note wherever the scores are not the whole benchmark's."""
        coverage = coverage or {}
        rows = []
        notes = []
        for name in sorted(set(self.benchmarks) | set(coverage)):
            tally = self.benchmarks.get(name, BenchmarkTally())
            scores, dropped = tally.scores(ks)
            ns = sorted({r["n"] for r in tally.problems.values()})
            samples = sum(r["n"] for r in tally.problems.values())
            n_text = "-" if not ns else (str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}")
            levels = [(name, "c")] + ([(f"{name} (base)", "c_base")] if tally.has_base else [])
            for label, level in levels:
                level_scores = scores if level == "c" else tally.scores(ks, level)[0]
                solved = sum(1 for r in tally.problems.values() if r[level] > 0)
                cells = [label, str(len(tally.problems)), str(solved), str(samples), n_text]
                cells += [f"{level_scores[f'pass@{k}']:.4f}" if f"pass@{k}" in level_scores else "-" for k in ks]
                rows.append(cells)
                if level_scores:
                    ci = tally.intervals(ks, level)
                    rows.append([f"  {stats.CI_LEVEL:.0%} CI", "", "", "", ""]
                                + [f"{ci[f'pass@{k}'][0]:.4f}-{ci[f'pass@{k}'][1]:.4f}" if f"pass@{k}" in ci else ""
                                   for k in ks])
            cov = coverage.get(name)
            if cov is not None and not cov.whole:
                if cov.complete:  # a selection, judged in full
                    notes.append(f"{name}: pass@k over {cov.scope()}, not the whole benchmark's")
                else:
                    notes += cov.gaps()
                    if tally.problems:
                        notes.append(f"{name}: pass@k over the {len(tally.problems)} problems judged only, "
                                     "not the benchmark's score")
            if dropped and tally.problems:
                smallest = ns[0] if ns else 0
                left_out = ", ".join(f"pass@{k}" for k in dropped)
                notes.append(f"{name}: {left_out} left out: pass@k needs n >= k samples per problem (n = {smallest})")
        if any(r[0].endswith(" CI") for r in rows):
            notes.append(f"CI: {stats.CI_METHOD}")
        header = ["benchmark", "problems", "solved", "samples", "n"] + [f"pass@{k}" for k in ks]
        robust = self.robustness(ks)
        notes += [f"{name}: pass@k above is over every (perturbation, problem) item; ReCode's metrics below"
                  for name in robust]
        out = _aligned(header, rows) + [f"note: {n}" for n in notes]
        for name, result in robust.items():
            r_header, r_rows = robustness.table_rows(result, ks)
            if r_rows:
                out += ["", f"{name}: ReCode robustness (RP_s: correct on all s perturbed prompts; RD_s, RR_s: "
                        "against the category's nominal pass@k, in percent)"]
                out += _aligned(r_header, r_rows)
        return out

    def robustness(self, ks: Sequence[int]) -> dict[str, robustness.Robustness]:
        """ReCode's metrics of every ReCode benchmark judged (:mod:`robustness`)."""
        return {name: robustness.from_records((r for _, r in tally.ordered()), ks)
                for name, tally in sorted(self.benchmarks.items()) if robustness.applies(name) and tally.problems}

    def to_json(self, ks: Sequence[int], config: Mapping[str, Any], environment: Mapping[str, Any],
                coverage: Mapping[str, Coverage], stopped: str | None) -> dict[str, Any]:
        """bigcode-evaluation-harness's layout at the top (benchmark -> pass@k, "config"), with
        per-problem detail, counts and the environment alongside.

        A benchmark's scores sit at the top level only when they are the benchmark's: every one
        of its problems judged with the full n samples. Scores over fewer problems (a -k
        selection, a file with some problems, a run stopped early) go under ``partial``, where
        no bigcode-style reader takes them for the benchmark's score; ``summary.<bench>.coverage``
        says what they cover."""
        doc: dict[str, Any] = {"format": RESULTS_FORMAT}  # first: how to read the rest
        partial: dict[str, Any] = {}
        problems: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        for name in sorted(set(self.benchmarks) | set(coverage)):
            tally = self.benchmarks.get(name, BenchmarkTally())
            cov = coverage.get(name)
            scores, dropped = tally.scores(ks)
            target = doc if cov is not None and cov.whole else partial
            if tally.problems:
                target[name] = scores
                if tally.has_base:
                    target[f"{name}-base"] = tally.scores(ks, "c_base")[0]
            problems[name] = {
                task_id: {k: r[k] for k in ("n", "c", "c_base", "outcomes", "generation", "compile_seconds", "run_seconds") if k in r}
                for task_id, r in tally.ordered()
            }
            summary[name] = {
                "problems": len(tally.problems),
                "solved": sum(1 for r in tally.problems.values() if r["c"] > 0),
                "samples": sum(r["n"] for r in tally.problems.values()),
                "skipped": sum(1 for kind, _ in (cov.reasons.values() if cov else ()) if kind == SKIPPED),
                "k_left_out": dropped,
                "ci": {m: list(v) for m, v in tally.intervals(ks).items()},
                **({"ci_base": {m: list(v) for m, v in tally.intervals(ks, "c_base").items()}} if tally.has_base else {}),
                "ci_method": stats.CI_METHOD,
                **({"coverage": cov.to_json()} if cov is not None else {}),
            }
            if robustness.applies(name) and tally.problems:
                summary[name]["robustness"] = robustness.from_records((r for _, r in tally.ordered()), ks).to_json()
        if partial:
            doc["partial"] = partial
        doc["config"] = dict(config)
        doc["summary"] = summary
        doc["problems"] = problems
        doc["environment"] = dict(environment)
        doc["complete"] = stopped is None and all(c.complete for c in coverage.values())
        doc["stopped"] = stopped
        return doc


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    """A header and rows as left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def write_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """The results file, written with :func:`write_text_atomically`."""
    write_text_atomically(path, json.dumps(document, indent=2) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see a
    half-written file, and an interrupted write leaves the previous one intact.

    The file gets the mode any file the user creates gets (0666 less the umask, and a default
    ACL of the folder): the temporary file is created with ``os.open(..., 0o666)``, not
    ``tempfile.mkstemp``, whose 0600 would make results and generations files private to their
    writer (unreadable to a CI job's other steps or a shared results folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:  # another writer's name: draw again
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
