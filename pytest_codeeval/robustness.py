"""ReCode's robustness metrics (Wang et al. 2022) over the per-sample verdicts of a run: pure.

Notation as in the data README (``shared/data/README.md``, "recode/ ... Metrics", after
``run_robust.py``): a problem x, its s perturbed prompts f_1(x)..f_s(x) under one transformation
(seeds s0..s(s-1)), n samples per prompt, sample i of each prompt paired by its index.

* Pass@k, on the category's nominal prompt: E_x[pass@k(n, c(x))].
* Robust Pass_s@k: E_x[pass@k(n, rc_s(x))], rc_s(x) = the samples i correct on *all* s prompts.
* Robust Drop_s@k: (Pass@k - RP_s@k) / Pass@k (None when Pass@k is 0).
* Robust Relative_s@k: E_x[pass@k(n, rc-_s(x)) + pass@k(n, rc+_s(x))], rc- = samples correct on
  the nominal prompt and wrong on at least one f_j(x), rc+ = wrong on the nominal and correct on
  at least one f_j(x).

Per category, the worst case runs over every transformation of the category and all their seeds
(``report_results_coarse``: "all" ANDed, "any" ORed across transformations). For n > 1 the
category's rc+ is ORed too, as the greedy branch does; upstream's sampling branch ANDs it (a bug
the data README notes), so its category RR undercounts for n > 1.

A problem counts where its nominal item and at least one perturbed item were judged; n is the
smallest number of samples among those items. Drop and Relative are fractions here; ReCode
prints them in percent, as the summary does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pytest_codeeval.metrics import pass_at_k_exact

NOMINAL, NOMINAL_PARTIAL = "nominal", "nominal_partial"
# which nominal a category's metrics compare against (partial code for syntax and format)
BASELINE = {"nlaugmenter": NOMINAL, "func_name": NOMINAL, "natgen": NOMINAL_PARTIAL, "format": NOMINAL_PARTIAL}
CATEGORY_LABELS = {"nlaugmenter": "docstring", "func_name": "function name", "natgen": "syntax", "format": "format"}


def applies(benchmark: str) -> bool:
    """Whether ``benchmark`` is one of ReCode's (its items carry ReCode's task ids)."""
    return benchmark.startswith("recode-")


@dataclass(frozen=True)
class ItemKey:
    """What a ReCode task id names: ``kind`` is a nominal form or a category."""

    kind: str
    transformation: str
    seed: int
    base: str  # ReCode's own task id, "HumanEval/0"


def parse(task_id: str) -> ItemKey | None:
    """``nominal/HumanEval/0`` or ``natgen/VarRenamerRN/s3/HumanEval/0``; None: not ReCode's."""
    kind, _, rest = task_id.partition("/")
    if kind in (NOMINAL, NOMINAL_PARTIAL):
        return ItemKey(kind, "", 0, rest) if rest else None
    if kind not in BASELINE:
        return None
    parts = rest.split("/", 2)
    if len(parts) != 3 or not parts[1].startswith("s") or not parts[1][1:].isdigit() or not parts[2]:
        return None
    return ItemKey(kind, parts[0], int(parts[1][1:]), parts[2])


@dataclass(frozen=True)
class Scores:
    """ReCode's three metrics (and the nominal Pass@k) over one group of perturbed prompts."""

    s: int  # seeds per transformation (the most judged)
    problems: int  # problems counted
    n: int  # samples per prompt (the smallest)
    pass_at_k: dict[int, float]
    robust_pass: dict[int, float]
    robust_drop: dict[int, float | None]
    robust_relative: dict[int, float]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"s": self.s, "problems": self.problems, "n": self.n}
        for k in sorted(self.pass_at_k):
            out[f"pass@{k}"] = self.pass_at_k[k]
            out[f"robust_pass@{k}"] = self.robust_pass[k]
            out[f"robust_drop@{k}"] = self.robust_drop[k]
            out[f"robust_relative@{k}"] = self.robust_relative[k]
        return out


def _scores(groups: Iterable[tuple[Sequence[bool], list[Sequence[bool]]]], s: int, ks: Sequence[int]) -> Scores | None:
    """``groups``: per problem, (nominal verdicts, the verdicts on each perturbed prompt)."""
    rows = []  # per problem: n, c nominal, rc, rc-, rc+
    for nominal, perturbed in groups:
        n = min(len(nominal), *(len(p) for p in perturbed))
        if n == 0:
            continue
        every = [all(p[i] for p in perturbed) for i in range(n)]
        some = [any(p[i] for p in perturbed) for i in range(n)]
        rows.append((n, sum(nominal[:n]), sum(every),
                     sum(1 for i in range(n) if nominal[i] and not every[i]),
                     sum(1 for i in range(n) if not nominal[i] and some[i])))
    if not rows:
        return None
    smallest = min(r[0] for r in rows)
    p, rp, rd, rr = {}, {}, {}, {}
    for k in (k for k in ks if k <= smallest):
        count = len(rows)
        nominal_k = sum((pass_at_k_exact(n, c, k) for n, c, *_ in rows), Fraction(0)) / count
        robust_k = sum((pass_at_k_exact(n, rc, k) for n, _, rc, _, _ in rows), Fraction(0)) / count
        relative_k = sum((pass_at_k_exact(n, lo, k) + pass_at_k_exact(n, hi, k) for n, _, _, lo, hi in rows),
                         Fraction(0)) / count
        p[k], rp[k], rr[k] = float(nominal_k), float(robust_k), float(relative_k)
        rd[k] = float((nominal_k - robust_k) / nominal_k) if nominal_k else None
    return Scores(s=s, problems=len(rows), n=smallest, pass_at_k=p, robust_pass=rp, robust_drop=rd,
                  robust_relative=rr)


@dataclass(frozen=True)
class Robustness:
    """A run's ReCode metrics: per category and per ``category/transformation``."""

    categories: dict[str, Scores]
    transformations: dict[str, Scores]

    def to_json(self) -> dict[str, Any]:
        return {"categories": {c: v.to_json() for c, v in self.categories.items()},
                "transformations": {t: v.to_json() for t, v in self.transformations.items()}}


def compute(verdicts: Mapping[str, Sequence[bool]], ks: Sequence[int]) -> Robustness:
    """The metrics from ``task id -> per-sample pass/fail`` (other task ids are ignored).

    Categories and transformations come out in the order their items first appear (give the
    records in dataset order for ReCode's order)."""
    nominal: dict[str, dict[str, Sequence[bool]]] = {NOMINAL: {}, NOMINAL_PARTIAL: {}}
    # category -> transformation -> base -> seed -> verdicts
    perturbed: dict[str, dict[str, dict[str, dict[int, Sequence[bool]]]]] = {}
    for tid, v in verdicts.items():
        key = parse(tid)
        if key is None:
            continue
        if key.kind in nominal:
            nominal[key.kind][key.base] = v
        else:
            perturbed.setdefault(key.kind, {}).setdefault(key.transformation, {}).setdefault(key.base, {})[key.seed] = v
    categories: dict[str, Scores] = {}
    transformations: dict[str, Scores] = {}
    for category, by_name in perturbed.items():
        base_verdicts = nominal[BASELINE[category]]
        for name, by_base in by_name.items():
            s = max(len(seeds) for seeds in by_base.values())
            scores = _scores(((base_verdicts[b], list(seeds.values())) for b, seeds in by_base.items()
                              if b in base_verdicts), s, ks)
            if scores is not None:
                transformations[f"{category}/{name}"] = scores
        merged: dict[str, list[Sequence[bool]]] = {}
        for by_base in by_name.values():
            for b, seeds in by_base.items():
                merged.setdefault(b, []).extend(seeds.values())
        s = max(max(len(seeds) for seeds in by_base.values()) for by_base in by_name.values())
        scores = _scores(((base_verdicts[b], runs) for b, runs in merged.items() if b in base_verdicts), s, ks)
        if scores is not None:
            categories[category] = scores
    return Robustness(categories, transformations)


def from_records(records: Iterable[Mapping[str, Any]], ks: Sequence[int]) -> Robustness:
    """:func:`compute` over a run's per-problem records (``task_id``, ``outcomes``)."""
    return compute({str(r["task_id"]): [o == "passed" for o in r.get("outcomes", ())] for r in records}, ks)


def table_rows(result: Robustness, ks: Sequence[int]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary: a category, then its transformations indented; Pass@k and
    Robust Pass as fractions, Drop and Relative in percent as ReCode prints them."""
    ks = [k for k in ks if any(k in v.pass_at_k for v in result.categories.values())]
    header = ["perturbation", "s", "problems"]
    for k in ks:
        header += [f"pass@{k}", f"RP_s@{k}", f"RD_s@{k}", f"RR_s@{k}"]
    rows = []
    for category, scores in result.categories.items():
        label = CATEGORY_LABELS.get(category, category)
        rows.append(_row(category if label == category else f"{category} ({label})", scores, ks))
        for name, t in result.transformations.items():
            if name.split("/", 1)[0] == category:
                rows.append(_row(f"  {name.split('/', 1)[1]}", t, ks))
    return header, rows


def _row(label: str, scores: Scores, ks: Sequence[int]) -> list[str]:
    cells = [label, str(scores.s), str(scores.problems)]
    for k in ks:
        if k not in scores.pass_at_k:
            cells += ["-"] * 4
            continue
        drop = scores.robust_drop[k]
        cells += [f"{scores.pass_at_k[k]:.4f}", f"{scores.robust_pass[k]:.4f}",
                  "-" if drop is None else f"{100 * drop:.2f}%", f"{100 * scores.robust_relative[k]:.2f}%"]
    return cells
