"""What a run covered of each benchmark, and whether its scores may stand for the benchmark's.

A pass@k is only as good as the problems under it. A generations file with 6 of HumanEval's 164
problems, a generation run that crashed half way, ``-x``, or a file with fewer samples than
``--codeeval-n`` all produce a number that looks like the benchmark's score. This module says,
per benchmark: how many problems the benchmark has, how many the session selected (``-k``, node
ids, ``--lf``: the user's choice, respected), how many were judged, and how many were judged with
the full n samples. Gates fail closed on it; the results file records it; reports mark it.

Pure data: no pytest. The plugin feeds it the selection (its own collection, or each xdist
worker's), the per-problem records and the samples per problem a full judgement needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SHOWN = 5  # task ids named in a one-line message before "and N more"

# why a selected problem has no verdict
SKIPPED = "skipped"  # no samples for it, or its toolchain is missing: the item said why
ERRORED = "errored"  # its setup failed (a fixture error, a source that failed)
NOT_RUN = "not run"  # the session stopped before its turn


def name_some(task_ids: Sequence[str], shown: int = SHOWN) -> str:
    """``A, B, C, D, E and 12 more``."""
    head = ", ".join(task_ids[:shown])
    return head + (f" and {len(task_ids) - shown} more" if len(task_ids) > shown else "")


@dataclass(frozen=True)
class Coverage:
    """One benchmark's coverage in one run."""

    benchmark: str
    total: int | None  # problems in the benchmark's data (None: unknown here)
    selected: tuple[str, ...] | None  # task ids the session selected (None: unknown)
    judged: Mapping[str, int]  # task id -> samples judged
    n: int | None  # samples per problem a full judgement needs (None: nothing to go by)
    reasons: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # task id -> (kind, detail)

    # -- derived ------------------------------------------------------------------------------
    @property
    def missing(self) -> tuple[str, ...]:
        """Selected problems without a verdict."""
        return tuple(t for t in self.selected or () if t not in self.judged)

    @property
    def short(self) -> tuple[str, ...]:
        """Problems judged with fewer samples than n."""
        if self.n is None:
            return ()
        return tuple(t for t, k in self.judged.items() if k < self.n)

    @property
    def in_full(self) -> int:
        return len(self.judged) - len(self.short)

    @property
    def complete(self) -> bool:
        """Every selected problem judged with its full n samples (and something was selected)."""
        return bool(self.selected) and not self.missing and not self.short

    @property
    def whole(self) -> bool:
        """Complete over the whole benchmark: its scores are the benchmark's scores."""
        return self.complete and self.total is not None and len(self.selected or ()) == self.total

    # -- text ---------------------------------------------------------------------------------
    def scope(self) -> str:
        """What a score covers: ``all 164 problems`` / ``20 selected of 164 problems``."""
        if self.selected is None:
            return f"{len(self.judged)} judged problems (selection unknown)"
        of = f" of {self.total}" if self.total is not None else ""
        if self.total is not None and len(self.selected) == self.total:
            return f"all {self.total} problems"
        return f"{len(self.selected)} selected{of} problems"

    def gaps(self) -> list[str]:
        """What keeps it from complete, one phrase per gap; empty when complete."""
        out = []
        if self.selected is None:
            out.append(f"{self.benchmark}: which problems were selected is unknown "
                       "(an xdist worker did not report its collection)")
        elif not self.selected:
            out.append(f"{self.benchmark}: no problem selected")
        missing = self.missing
        if missing:
            kinds = Counter(self.reasons.get(t, (NOT_RUN, ""))[0] for t in missing)
            parts = []
            for kind in (SKIPPED, ERRORED, NOT_RUN):
                if kinds[kind]:
                    ids = [t for t in missing if self.reasons.get(t, (NOT_RUN, ""))[0] == kind]
                    example = self.reasons.get(ids[0], (kind, ""))[1]
                    parts.append(f"{kinds[kind]} {kind}: {name_some(ids)}" + (f" ({example})" if example else ""))
            out.append(f"{self.benchmark}: {len(missing)} of {len(self.selected or ())} selected problems "
                       f"not judged; " + "; ".join(parts))
        short = self.short
        if short:
            shown = [f"{t} ({self.judged[t]})" for t in short]
            out.append(f"{self.benchmark}: {len(short)} problem(s) judged with fewer than n = {self.n} samples: "
                       + name_some(shown))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "problems_in_benchmark": self.total,
            "selected": len(self.selected) if self.selected is not None else None,
            "judged": len(self.judged),
            "judged_in_full": self.in_full,
            "samples_per_problem": self.n,
            "complete": self.complete,
            "whole_benchmark": self.whole,
            "not_judged": list(self.missing),
            "short": {t: self.judged[t] for t in self.short},
        }


class Selection:
    """The problems a session selected and what became of those without a verdict; fed by the
    process that reports (the controller, under xdist)."""

    def __init__(self) -> None:
        self.selected: dict[str, list[str]] = {}  # benchmark -> task ids, in collection order
        self.known = False  # whether the selection was reported at all
        self.reasons: dict[str, dict[str, tuple[str, str]]] = {}  # benchmark -> task id -> (kind, detail)

    def add(self, selected: Mapping[str, Iterable[str]]) -> None:
        """A collection's selected problems by benchmark (serial: once; xdist: once per worker,
        each of which collects the same items)."""
        self.known = True
        for bench, task_ids in selected.items():
            seen = self.selected.setdefault(bench, [])
            known = set(seen)
            seen += [t for t in task_ids if t not in known]

    def note(self, benchmark: str, task_id: str, kind: str, detail: str = "") -> None:
        """Why a problem has no verdict (the first reason given stands)."""
        self.reasons.setdefault(benchmark, {}).setdefault(task_id, (kind, detail))

    def coverage(self, benchmark: str, total: int | None, judged: Mapping[str, int],
                 n: int | None) -> Coverage:
        """``n``: the samples per problem asked for (``--codeeval-n``); None: the most judged for
        any problem of the benchmark (a generations file's own count: ragged files are refused)."""
        expected = n if n is not None else max(judged.values(), default=None)
        selected = tuple(self.selected.get(benchmark, ())) if self.known else None
        return Coverage(benchmark, total, selected, dict(judged), expected, dict(self.reasons.get(benchmark, {})))

    def benchmarks(self) -> list[str]:
        return sorted(self.selected)
