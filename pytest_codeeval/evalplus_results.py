"""EvalPlus's ``eval_results.json`` read as per-problem records, for ``codeeval table``/``diff``/
``plot`` and ``--codeeval-baseline``.

``evalplus.evaluate`` (0.3.x) writes ``{"date", "hash", "eval": {task_id: [sample, ...]}}``, one
entry per sample in completion order: ``{"task_id", "solution", "base_status", "plus_status",
"base_fail_tests", "plus_fail_tests"}``, a status being ``"pass"``, ``"fail"``, ``"timeout"`` or
null (unknown); ``plus_status`` is null for every sample of a ``--base-only`` evaluation.
Counted as evalplus counts: a problem's n is its number of samples, its base level's c the
samples whose ``base_status`` is ``"pass"``, its plus level's c those whose base and plus
statuses both are. ``HumanEval/N`` ids are ``humanevalplus``'s problems, ``Mbpp/N`` ids
``mbppplus``'s, the names this plugin reports them under (``<name>-base`` for the base level).

Pure data: no pytest, no files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PASS = "pass"
STATUSES = frozenset({"pass", "fail", "timeout", None})
BENCHMARKS = {"HumanEval": "humanevalplus", "Mbpp": "mbppplus"}  # task id prefix -> benchmark


class EvalplusError(ValueError):
    """Why a document is not a readable evalplus results file; one line."""


@dataclass(frozen=True)
class EvalplusResults:
    """What an evalplus results file says, per problem."""

    # benchmark -> task id -> {"n", "c_base"} and, unless evaluated --base-only, "c" (plus level);
    # task ids in dataset order
    records: dict[str, dict[str, dict[str, int]]]
    plus: bool  # plus-level verdicts present (False: evaluated with --base-only)
    dataset_hash: str | None  # evalplus's md5 of its dataset file (not this plugin's fingerprint)
    date: str | None


def looks_like(doc: Any) -> bool:
    """Whether a parsed JSON document is an evalplus results file (this plugin's never has "eval")."""
    return isinstance(doc, dict) and isinstance(doc.get("eval"), dict) and "problems" not in doc


def read(doc: Mapping[str, Any]) -> EvalplusResults:
    """The per-problem records of an evalplus results file. Raises :class:`EvalplusError`."""
    evals = doc.get("eval")
    if not isinstance(evals, dict) or not evals:
        raise EvalplusError('no per-problem verdicts ("eval" is empty or not an object)')
    if any(isinstance(v, dict) for v in evals.values()):
        # evalplus before 0.3 kept {"base": [[status, details], ...], "plus": ...} per problem
        raise EvalplusError("an evalplus results file older than 0.3 (per-problem \"base\"/\"plus\" "
                            "lists); re-run evalplus.evaluate with evalplus >= 0.3 to get per-sample entries")
    counted: dict[str, list[tuple[int, str, dict[str, int]]]] = {}
    plus_seen = False
    for task_id, samples in evals.items():
        prefix, _, number = str(task_id).partition("/")
        bench = BENCHMARKS.get(prefix)
        if bench is None or not number.isdigit():
            raise EvalplusError(f"{task_id}: not a HumanEval/N or Mbpp/N task id")
        if not isinstance(samples, list) or not samples:
            raise EvalplusError(f"{task_id}: expected a non-empty list of samples, got {type(samples).__name__}")
        c_base = c_plus = 0
        for i, s in enumerate(samples):
            if not isinstance(s, dict) or "base_status" not in s or "plus_status" not in s:
                raise EvalplusError(f"{task_id}: sample #{i} has no base_status/plus_status")
            base, plus = s["base_status"], s["plus_status"]
            if base not in STATUSES or plus not in STATUSES:
                raise EvalplusError(f"{task_id}: sample #{i}: unknown status {base!r}/{plus!r}")
            plus_seen |= plus is not None
            c_base += base == PASS
            c_plus += base == PASS and plus == PASS
        record = {"n": len(samples), "c_base": c_base, "c": c_plus}
        counted.setdefault(bench, []).append((int(number), str(task_id), record))
    records: dict[str, dict[str, dict[str, int]]] = {}
    for bench, rows in sorted(counted.items()):
        rows.sort()  # evalplus writes problems in the order they finished: the dataset's order instead
        records[bench] = {task_id: (r if plus_seen else {"n": r["n"], "c_base": r["c_base"]}) for _, task_id, r in rows}
    dataset_hash, date = doc.get("hash"), doc.get("date")
    return EvalplusResults(records, plus_seen, dataset_hash if isinstance(dataset_hash, str) else None,
                           date if isinstance(date, str) else None)
