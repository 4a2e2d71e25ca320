"""Regression gates: thresholds on pass@k, and a paired comparison with a baseline.

Decisions only: no pytest, no terminal. The plugin feeds it per-problem records (the same
``{"benchmark", "task_id", "n", "c", ...}`` records the results file holds) and turns its
decisions into item outcomes, summary lines and an exit status.

Where a baseline's records come from is a :class:`BaselineRecords` provider: a results file
(:class:`ResultsFileBaseline`, ``--codeeval-baseline``) or anything else that can say, for one
problem, how many of the baseline's n samples passed (an in-session evaluation of a base model).

How the baseline gate spends its error rate (details and the simulation: docs/statistics.md):
alpha is split in two halves, one for the aggregate tests (one per benchmark, Bonferroni over
benchmarks) and one for the per-problem tests (Bonferroni over the problems compared), so the
chance that a run with no regression fails the gate is at most alpha.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_codeeval import evalplus_results, metrics, stats
from pytest_codeeval.coverage import Coverage
from pytest_codeeval.problem import Problem

EXIT_THRESHOLD = 10  # a --codeeval-fail-under threshold was not met (or could not be measured)
EXIT_REGRESSION = 11  # the baseline gate found a regression (or compared nothing)
EXIT_INCOMPLETE = 12  # a gated benchmark was not judged in full, or the run stopped early
PAIR_PROPERTY = "codeeval_baseline"  # user_properties key: the item's comparison with its baseline

# config keys that name the candidate model, not how it was evaluated: they are what differs
# between a base model and its fine-tune, so a baseline comparison ignores them
CANDIDATE_KEYS = frozenset({
    "model", "model_id", "model_name", "revision", "adapter", "peft_model", "precision", "dtype",
    "torch_dtype", "quantization", "load_in_8bit", "load_in_4bit", "modeltype", "trust_remote_code",
    "generations",  # replayed files: the candidate's own samples
    "model_path", "peft", "weights_fingerprint",  # a local model's folder, adapter and weights
    "endpoint", "backend",  # a served model's URL, and that a server generated
})
# config keys that describe this run or this machine, not the evaluation's conditions
RUN_KEYS = frozenset({
    "tasks", "timeouts", "data", "data_sources", "workers", "k", "isolation", "json",
    "cache", "cache_dir", "generation_cache", "device", "devices", "batch_size",
    "metric_output_path", "save_generations", "save_generations_path", "load_generations_path",
    "generation", "libraries", "prompt_mode_reason",  # generation's own statistics and versions
    "api",  # an endpoint's concurrency, timeout and retries
})
IGNORED_CONFIG_KEYS = CANDIDATE_KEYS | RUN_KEYS


class GateError(Exception):
    """A gate that cannot be set up: a bad option value, an unreadable or incomparable baseline.
    The message is one line."""


# -- thresholds ---------------------------------------------------------------------------------
_THRESHOLD = re.compile(r"^(?P<bench>[^\s:=]+):pass@(?P<k>\d+)=(?P<value>\S+)$")


@dataclass(frozen=True)
class Threshold:
    benchmark: str
    k: int
    minimum: float

    @property
    def metric(self) -> str:
        return f"pass@{self.k}"

    def __str__(self) -> str:
        return f"{self.benchmark}:{self.metric}={self.minimum:g}"


def parse_threshold(text: str) -> Threshold:
    """``humaneval:pass@1=0.30`` -> Threshold("humaneval", 1, 0.30). Raises ValueError."""
    m = _THRESHOLD.match(text.strip())
    if not m:
        raise ValueError(f"expected BENCHMARK:pass@K=VALUE such as humaneval:pass@1=0.30, got {text!r}")
    k = int(m["k"])
    try:
        value = float(m["value"])
    except ValueError:
        raise ValueError(f"expected a number between 0 and 1 after '=', got {m['value']!r}") from None
    if k < 1 or not 0 <= value <= 1:
        raise ValueError(f"expected k >= 1 and a value between 0 and 1, got {text!r}")
    return Threshold(m["bench"], k, value)


@dataclass(frozen=True)
class ThresholdCheck:
    threshold: Threshold
    value: float | None  # None: not measured
    ci: tuple[float, float] | None = None
    why_unmeasured: str = ""

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value >= self.threshold.minimum

    def describe(self) -> str:
        t = self.threshold
        if self.value is None:
            return f"{t.benchmark} {t.metric} not measured ({self.why_unmeasured})"
        ci = f" (95% CI {self.ci[0]:.4f}-{self.ci[1]:.4f})" if self.ci else ""
        relation = ">=" if self.passed else "<"
        return f"{t.benchmark} {t.metric} {self.value:.4f}{ci} {relation} {t.minimum:g}"

    def to_json(self) -> dict[str, Any]:
        return {"threshold": str(self.threshold), "value": self.value,
                "ci": list(self.ci) if self.ci else None, "passed": self.passed,
                **({"not_measured": self.why_unmeasured} if self.value is None else {})}


def check_thresholds(thresholds: Sequence[Threshold],
                     counts: Mapping[str, Sequence[tuple[int, int]]]) -> list[ThresholdCheck]:
    """Judge every threshold against the run's per-problem (n, c) by benchmark. A benchmark's
    ``<name>-base`` level (HumanEval+, MBPP+) is its own entry in ``counts``. A threshold whose
    benchmark was not run, or whose k exceeds a problem's n, is not met: a gate fails closed."""
    checks = []
    for t in thresholds:
        pairs = counts.get(t.benchmark)
        if not pairs:
            checks.append(ThresholdCheck(t, None, why_unmeasured=f"no {t.benchmark} problem was judged"))
            continue
        smallest = min(n for n, _ in pairs)
        if t.k > smallest:
            checks.append(ThresholdCheck(t, None, why_unmeasured=f"needs n >= {t.k} samples per problem, n = {smallest}"))
            continue
        value = metrics.mean_pass_at_k(pairs, t.k)
        checks.append(ThresholdCheck(t, value, stats.pass_at_k_ci(pairs, t.k)))
    return checks


# -- baseline records ---------------------------------------------------------------------------
class BaselineRecords(Protocol):
    """Where a baseline's per-problem counts come from."""

    label: str  # names the baseline in messages: a file path, a model id

    def covers(self, problem: Problem) -> bool:
        """Whether the baseline has (or will have) a record for this problem; cheap: called for
        every selected item after collection, to count the comparisons."""

    def record(self, problem: Problem) -> Mapping[str, Any] | None:
        """The baseline's record for the problem, at least ``{"n": int, "c": int}``; called
        once per judged problem, in the process that judges it (an xdist worker, perhaps)."""


class ResultsFileBaseline:
    """A results file written by ``--codeeval-json`` as baseline, or an evalplus
    ``eval_results.json`` (its HumanEval+/MBPP+ verdicts: :mod:`evalplus_results`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.evalplus: evalplus_results.EvalplusResults | None = None
        try:
            self.doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GateError(f"--codeeval-baseline: {path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GateError(f"--codeeval-baseline: {path}: not a readable results file ({e})") from None
        if evalplus_results.looks_like(self.doc):
            try:
                self.evalplus = evalplus_results.read(self.doc)
            except evalplus_results.EvalplusError as e:
                raise GateError(f"--codeeval-baseline: {path}: not a usable evalplus results file: {e}") from None
            if not self.evalplus.plus:
                raise GateError(f"--codeeval-baseline: {path}: an evalplus results file evaluated with --base-only: "
                                "it has no plus-level verdicts to compare HumanEval+/MBPP+ with")
            problems = self.evalplus.records
        else:
            problems = self.doc.get("problems") if isinstance(self.doc, dict) else None
        if not isinstance(problems, dict) or not all(isinstance(v, dict) for v in problems.values()):
            raise GateError(f"--codeeval-baseline: {path}: no per-problem records (\"problems\"); "
                            "write the baseline with --codeeval-json")
        self.problems: dict[str, dict[str, Any]] = problems
        for bench, records in problems.items():
            for task_id, r in records.items():
                if not (isinstance(r, dict) and isinstance(r.get("n"), int) and isinstance(r.get("c"), int)
                        and 0 <= r["c"] <= r["n"] and r["n"] >= 1):
                    raise GateError(f"--codeeval-baseline: {path}: {bench} {task_id}: malformed record {r!r}")

    def covers(self, problem: Problem) -> bool:
        return problem.task_id in self.problems.get(problem.benchmark, {})

    def record(self, problem: Problem) -> Mapping[str, Any] | None:
        return self.problems.get(problem.benchmark, {}).get(problem.task_id)

    @property
    def config(self) -> dict[str, Any]:
        config = self.doc.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def datasets(self) -> dict[str, Any] | None:
        datasets = self.doc.get("datasets")
        return datasets if isinstance(datasets, dict) else None

    def incompatibilities(self, config: Mapping[str, Any], fingerprints: Mapping[str, str]) -> list[str]:
        """Why this baseline and a run with ``config`` and dataset ``fingerprints`` (benchmark ->
        fingerprint, for the benchmarks the run may judge) are not comparable; empty if they are."""
        if self.evalplus is not None:
            # its dataset hash is evalplus's md5 of its release file, not a fingerprint of the
            # problems as judged here, and its timeouts and comparison are evalplus's own
            return ["an evalplus eval_results.json records neither this plugin's dataset fingerprints nor "
                    "its evaluation settings (evalplus's own time limits and comparison)"]
        reasons = config_differences(self.config, config)
        benches = sorted(b for b in fingerprints if b in self.problems)
        if benches and self.datasets is None:
            reasons.append("the baseline records no dataset fingerprints (an older results file)")
        elif self.datasets is not None:
            for bench in benches:
                theirs = (self.datasets.get(bench) or {}).get("fingerprint")
                if theirs != fingerprints[bench]:
                    reasons.append(f"{bench} data differ (fingerprint {_short(theirs)} vs {_short(fingerprints[bench])})")
        return reasons


def _short(fingerprint: Any) -> str:
    return str(fingerprint)[:19] if fingerprint else "none"


def config_differences(baseline: Mapping[str, Any], candidate: Mapping[str, Any],
                       ignored: Iterable[str] = IGNORED_CONFIG_KEYS) -> list[str]:
    """The evaluation settings on which two results files' ``config`` blocks differ: every key
    except those naming the candidate model or describing the run (:data:`IGNORED_CONFIG_KEYS`).
    A key present on one side only differs unless its value there is None."""
    skip = set(ignored)
    out = []
    for key in sorted((set(baseline) | set(candidate)) - skip):
        a, b = baseline.get(key), candidate.get(key)
        if a != b:
            out.append(f"{key} {json.dumps(a)} vs {json.dumps(b)}")
    return out


# -- the baseline gate --------------------------------------------------------------------------
@dataclass(frozen=True)
class PairVerdict:
    """One problem judged against its baseline: the per-problem test and what the item shows."""

    benchmark: str
    task_id: str
    index: int
    n: int
    c: int
    n_base: int
    c_base: int
    p: float  # one-sided Fisher exact p-value that the candidate is worse
    alpha: float  # the per-problem level it was judged at (alpha / 2 / problems compared)
    regressed: bool

    @property
    def drop(self) -> float:
        return self.c_base / self.n_base - self.c / self.n

    @property
    def unsolved_in_both(self) -> bool:
        return self.c == 0 and self.c_base == 0

    def message(self, baseline_label: str) -> str:
        if self.regressed:
            return (f"{self.task_id}: regressed against the baseline: {self.c}/{self.n} passed, baseline "
                    f"{self.c_base}/{self.n_base} (one-sided Fisher p = {self.p:.2g} < {self.alpha:.2g})")
        return f"{self.task_id}: unsolved, as in the baseline ({self.c_base}/{self.n_base} in {baseline_label})"

    def to_property(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "task_id": self.task_id, "index": self.index, "n": self.n,
                "c": self.c, "n_base": self.n_base, "c_base": self.c_base, "p": self.p, "alpha": self.alpha,
                "regressed": self.regressed}

    @classmethod
    def from_property(cls, d: Mapping[str, Any]) -> PairVerdict:
        return cls(**{k: d[k] for k in ("benchmark", "task_id", "index", "n", "c", "n_base", "c_base", "p",
                                        "alpha", "regressed")})


def judge_pair(record: Mapping[str, Any], base: Mapping[str, Any], alpha: float, tolerance: float,
               comparisons: int) -> PairVerdict:
    """Judge one problem against its baseline record. A per-problem regression: the one-sided
    Fisher exact test is significant at alpha / 2 / comparisons (Bonferroni over the problems
    compared; the other half of alpha is the aggregate test's) and the pass@1 drop exceeds the
    tolerance."""
    n, c, nb, cb = int(record["n"]), int(record["c"]), int(base["n"]), int(base["c"])
    level = alpha / 2 / max(1, comparisons)
    p = stats.fisher_worse(c, n, cb, nb)
    regressed = p < level and (cb / nb - c / n) > tolerance
    return PairVerdict(record["benchmark"], record["task_id"], int(record.get("index", 0)), n, c, nb, cb, p,
                       level, regressed)


@dataclass(frozen=True)
class BenchmarkComparison:
    benchmark: str
    problems: int  # paired
    candidate: float  # pass@1 over the paired problems
    baseline: float
    diff_ci: tuple[float, float]
    p: float  # sign-flip test of H0: mean diff >= -tolerance
    alpha: float  # the level this benchmark's aggregate test used
    tolerance: float
    regressed_problems: tuple[str, ...]

    @property
    def diff(self) -> float:
        return self.candidate - self.baseline

    @property
    def aggregate_regressed(self) -> bool:
        return self.p < self.alpha

    @property
    def regressed(self) -> bool:
        return self.aggregate_regressed or bool(self.regressed_problems)

    def describe(self) -> str:
        text = (f"{self.benchmark} pass@1 {self.candidate:.4f} vs baseline {self.baseline:.4f} "
                f"({self.diff:+.4f}, 95% CI {self.diff_ci[0]:+.4f} to {self.diff_ci[1]:+.4f}; p = {self.p:.2g}")
        text += f" {'<' if self.aggregate_regressed else '>='} {self.alpha:.3g}"
        text += f", tolerance {self.tolerance:g}; {self.problems} problems paired)"
        if self.regressed_problems:
            shown = ", ".join(self.regressed_problems[:5])
            more = f" and {len(self.regressed_problems) - 5} more" if len(self.regressed_problems) > 5 else ""
            text += f"; {len(self.regressed_problems)} problem(s) regressed: {shown}{more}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"problems": self.problems, "candidate_pass@1": self.candidate, "baseline_pass@1": self.baseline,
                "diff": self.diff, "diff_ci": list(self.diff_ci), "p": self.p, "alpha": self.alpha,
                "tolerance": self.tolerance, "aggregate_regressed": self.aggregate_regressed,
                "regressed_problems": list(self.regressed_problems), "regressed": self.regressed}


def compare(verdicts: Iterable[PairVerdict], alpha: float, tolerance: float) -> list[BenchmarkComparison]:
    """The aggregate, paired comparison per benchmark. A benchmark regressed when its sign-flip
    test of "pass@1 fell by more than the tolerance" is significant at alpha / 2 / benchmarks,
    or when any of its problems regressed on its own (see :func:`judge_pair`)."""
    by_bench: dict[str, list[PairVerdict]] = {}
    for v in verdicts:
        by_bench.setdefault(v.benchmark, []).append(v)
    level = alpha / 2 / max(1, len(by_bench))
    out = []
    for bench, vs in sorted(by_bench.items()):
        vs.sort(key=lambda v: (v.index, v.task_id))  # the dataset's order: serial and xdist agree
        cand = [(v.n, v.c) for v in vs]
        base = [(v.n_base, v.c_base) for v in vs]
        d = stats.paired_differences(cand, base)
        out.append(BenchmarkComparison(
            benchmark=bench, problems=len(vs), candidate=metrics.mean_pass_at_k(cand, 1),
            baseline=metrics.mean_pass_at_k(base, 1), diff_ci=stats.bootstrap_ci(d),
            p=stats.sign_flip_test(d, tolerance), alpha=level, tolerance=tolerance,
            regressed_problems=tuple(v.task_id for v in vs if v.regressed)))
    return out


# -- the session's decision ---------------------------------------------------------------------
@dataclass
class Decision:
    """Every configured gate's verdict, the lines to show and the exit status they imply."""

    thresholds: list[ThresholdCheck] = field(default_factory=list)
    comparisons: list[BenchmarkComparison] | None = None  # None: no baseline gate
    baseline_label: str = ""
    unpaired: int = 0  # judged problems the baseline has no record of
    verdicts: list[PairVerdict] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # what a gated benchmark is missing, one phrase each
    scopes: dict[str, str] = field(default_factory=dict)  # gated benchmark -> what its gate covered

    @property
    def incomplete_failed(self) -> bool:
        return bool(self.incomplete)

    @property
    def threshold_failed(self) -> bool:
        return any(not t.passed for t in self.thresholds)

    @property
    def baseline_failed(self) -> bool:
        return self.comparisons is not None and (not self.comparisons or any(c.regressed for c in self.comparisons))

    @property
    def exit_status(self) -> int:
        if self.incomplete_failed:  # the numbers below are not the benchmark's: nothing else counts
            return EXIT_INCOMPLETE
        if self.baseline_failed:
            return EXIT_REGRESSION
        if self.threshold_failed:
            return EXIT_THRESHOLD
        return 0

    def lines(self) -> list[str]:
        if self.incomplete:
            out = [f"codeeval gate FAILED (exit {EXIT_INCOMPLETE}): not every selected problem was judged "
                   "in full: " + "; ".join(self.incomplete)]
            # what the gates would have said, marked as over the judged problems only
            return out + [f"note: over the problems judged only, not gated: {body}" for _, body in self._verdicts()]
        # what the verdicts stand on: "gated on humaneval: 20 selected of 164 problems"
        scope = (" [gated on " + "; ".join(f"{b}: {s}" for b, s in sorted(self.scopes.items())) + "]"
                 if self.scopes else "")
        return [f"{head}: {body}" + (scope if head != "note" else "") for head, body in self._verdicts()]

    def _verdicts(self) -> list[tuple[str, str]]:
        """Each gate's verdict as (head, body): head "codeeval gate passed", "codeeval gate
        FAILED (exit N)" or "note"."""
        out = []
        if self.thresholds:
            failed = [t for t in self.thresholds if not t.passed]
            if failed:
                out.append((f"codeeval gate FAILED (exit {EXIT_THRESHOLD})",
                            "below threshold: " + "; ".join(t.describe() for t in failed)))
            else:
                out.append(("codeeval gate passed", "; ".join(t.describe() for t in self.thresholds)))
        if self.comparisons is not None:
            if not self.comparisons:
                out.append((f"codeeval gate FAILED (exit {EXIT_REGRESSION})", "nothing compared: no judged problem "
                            f"has a record in the baseline {self.baseline_label}"))
            else:
                bad = [c for c in self.comparisons if c.regressed]
                head, what = ((f"codeeval gate FAILED (exit {EXIT_REGRESSION})", "regression against") if bad
                              else ("codeeval gate passed", "no regression against"))
                out.append((head, f"{what} {self.baseline_label}: " + "; ".join(c.describe() for c in (bad or self.comparisons))))
            if self.unpaired:
                out.append(("note", f"{self.unpaired} judged problem(s) have no baseline record and were not compared"))
        return out

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"exit_status": self.exit_status, "scopes": dict(self.scopes)}
        if self.incomplete:
            doc["incomplete"] = list(self.incomplete)
        if self.thresholds:
            doc["thresholds"] = [t.to_json() for t in self.thresholds]
        if self.comparisons is not None:
            problems: dict[str, dict[str, Any]] = {}
            for v in sorted(self.verdicts, key=lambda v: (v.benchmark, v.index, v.task_id)):
                problems.setdefault(v.benchmark, {})[v.task_id] = {"n": v.n_base, "c": v.c_base, "p": v.p,
                                                                   "regressed": v.regressed}
            doc["baseline"] = {"source": self.baseline_label, "unpaired": self.unpaired,
                               "benchmarks": {c.benchmark: c.to_json() for c in self.comparisons},
                               "problems": problems}
        return doc


class GateSession:
    """A session's gates: set up from the options, fed item by item, decided at the end.

    In the process that judges items: :meth:`plan` once after collection, then :meth:`judge`
    per problem. In the process that reports (the xdist controller, or the only process):
    :meth:`observe` per report, then :meth:`decide`.
    """

    def __init__(self, thresholds: Sequence[Threshold] = (), baseline: BaselineRecords | None = None,
                 alpha: float = 0.05, tolerance: float = 0.0) -> None:
        self.thresholds = tuple(thresholds)
        self.baseline = baseline
        self.alpha = alpha
        self.tolerance = tolerance
        self.comparisons = 0  # problems selected that the baseline covers: the Bonferroni count
        self.verdicts: dict[tuple[str, str], PairVerdict] = {}
        self.unpaired = 0

    @property
    def configured(self) -> bool:
        return bool(self.thresholds) or self.baseline is not None

    def plan(self, problems: Iterable[Problem]) -> None:
        """Count the selected problems the baseline covers (per-problem tests are corrected for
        this many comparisons)."""
        if self.baseline is not None:
            self.comparisons = sum(1 for p in problems if self.baseline.covers(p))

    def judge(self, problem: Problem, record: Mapping[str, Any]) -> PairVerdict | None:
        """Compare one judged problem with its baseline record (None: no baseline, or no record)."""
        if self.baseline is None:
            return None
        base = self.baseline.record(problem)
        if base is None:
            return None
        return judge_pair(record, base, self.alpha, self.tolerance, max(1, self.comparisons))

    def observe(self, record: Mapping[str, Any], pair: Mapping[str, Any] | None) -> None:
        """One judged problem's report: its record and, if it was compared, its verdict."""
        if pair is not None:
            v = PairVerdict.from_property(pair)
            self.verdicts[(v.benchmark, v.task_id)] = v
        elif self.baseline is not None:
            self.unpaired += 1

    def decide(self, counts: Mapping[str, Sequence[tuple[int, int]]],
               coverage: Mapping[str, Coverage] | None = None, stopped: str | None = None) -> Decision:
        """Every gate's verdict. ``counts``: the run's (n, c) per problem by benchmark, in dataset
        order, with ``<name>-base`` entries for two-level benchmarks. ``coverage``: what the run
        covered of each benchmark; a gated benchmark not judged in full, or a run that ``stopped``
        early, fails closed (:data:`EXIT_INCOMPLETE`) whatever its scores."""
        coverage = coverage or {}
        decision = Decision(thresholds=check_thresholds(self.thresholds, counts))
        if self.baseline is not None:
            decision.comparisons = compare(self.verdicts.values(), self.alpha, self.tolerance)
            decision.baseline_label = self.baseline.label
            decision.unpaired = self.unpaired
            decision.verdicts = list(self.verdicts.values())
        gated = gated_benchmarks(self.thresholds, self.baseline is not None, coverage)
        if stopped:
            decision.incomplete.append(f"the run stopped early ({stopped})")
        for name in gated:
            decision.incomplete += coverage[name].gaps()
            decision.scopes[name] = coverage[name].scope()
        return decision


def gated_benchmarks(thresholds: Sequence[Threshold], baseline: bool,
                     coverage: Mapping[str, Coverage]) -> list[str]:
    """The benchmarks a gate depends on: each threshold's (``humanevalplus-base`` is
    humanevalplus's base level), and with a baseline every benchmark the run selected or judged."""
    names = set(coverage) if baseline else set()
    for t in thresholds:
        name = t.benchmark
        if name not in coverage and name.endswith("-base") and name.removesuffix("-base") in coverage:
            name = name.removesuffix("-base")
        if name in coverage:
            names.add(name)
    return sorted(names)


def run_counts(tallies: Mapping[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """(n, c) per problem by benchmark from :class:`report.Results`' tallies, in dataset order,
    with ``<name>-base`` for two-level benchmarks (as the results file names them)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for name, tally in tallies.items():
        ordered = tally.ordered()
        out[name] = [(r["n"], r["c"]) for _, r in ordered]
        if tally.has_base:
            out[f"{name}-base"] = [(r["n"], r["c_base"]) for _, r in ordered]
    return out
