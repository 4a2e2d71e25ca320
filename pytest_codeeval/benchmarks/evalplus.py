"""HumanEval+ (v0.1.10) and MBPP+ (v0.2.0) from EvalPlus (Liu et al. 2023).

Data: ``<data>/evalplus/HumanEvalPlus-v0.1.10.jsonl.gz`` and ``MbppPlus-v0.2.0.jsonl.gz`` (the
release files), or the ``evalplus/humanevalplus`` / ``evalplus/mbppplus`` datasets through
``datasets`` when online.

Each problem is judged at two levels, reported separately as evalplus does: "base" runs the
dataset's ``base_input`` (the original tests' inputs) and "plus" runs ``plus_input`` after it;
expected outputs are the reference solution's (see :mod:`groundtruth`), compared with evalplus's
rules (:mod:`evalplus_oracle`: tolerance ``atol``, special oracles, set/not-None tasks).

Prompts as bigcode-evaluation-harness builds them: HumanEval+ like HumanEval (the stripped
prompt, HumanEval's stops); MBPP+ like MBPP, whose release ``prompt`` already is the docstring of
description and first test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pytest_codeeval.benchmarks import (
    Benchmark,
    BenchmarkError,
    BenchmarkSpec,
    DataUnavailable,
    LoadOptions,
    groundtruth,
    hub_hint,
    hub_usable,
    humaneval,
    mbpp,
    read_jsonl,
    register,
)
from pytest_codeeval.benchmarks.evalplus_oracle import check_stage
from pytest_codeeval.problem import Problem

FILES = {"humanevalplus": "HumanEvalPlus-v0.1.10.jsonl.gz", "mbppplus": "MbppPlus-v0.2.0.jsonl.gz"}
HUB = {"humanevalplus": "evalplus/humanevalplus", "mbppplus": "evalplus/mbppplus"}
MAX_TIMEOUT = 60.0  # evalplus's cap as well
TIME_FACTOR = 8.0  # per-problem CPU limit = 2 s + 8 x the reference's time over all inputs


def _records(name: str, data_dir: Path | None) -> tuple[list[dict[str, Any]], str, str]:
    """-> (records, where they came from, a digest of their content)"""
    if data_dir is not None:
        path = data_dir / "evalplus" / FILES[name]
        if path.is_file():
            return read_jsonl(path), str(path), hashlib.sha256(path.read_bytes()).hexdigest()
    if hub_usable():
        try:
            import datasets

            rows = [dict(r) for r in datasets.load_dataset(HUB[name], split="test")]
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            return rows, f"hub:{HUB[name]}", digest
        except Exception:  # offline: say what to get instead
            pass
    where = data_dir / "evalplus" if data_dir else Path("<DIR>/evalplus")
    raise DataUnavailable(
        f"{name} data not found: put EvalPlus's release file {FILES[name]} in {where}"
        + ("" if data_dir else " and pass --codeeval-data=<DIR> (or set CODEEVAL_DATA)")
        + hub_hint(HUB[name])
    )


def _load(name: str, dataset: str, data_dir: Path | None) -> Benchmark:
    records, source, digest = _records(name, data_dir)
    default_timeout = humaneval.TIMEOUT if dataset == "humaneval" else mbpp.TIMEOUT
    jobs = []
    for r in records:
        try:
            code = r["prompt"] + r["canonical_solution"]
            jobs.append({"task_id": r["task_id"], "dataset": dataset, "code": code,
                         "entry_point": r["entry_point"], "base_input": r["base_input"],
                         "plus_input": r["plus_input"]})
        except KeyError as e:
            raise BenchmarkError(f"{source}: {r.get('task_id', '?')} lacks the field {e}") from None
    truth = groundtruth.ensure(name, digest, jobs)
    problems = []
    for i, r in enumerate(records):
        gt = truth[r["task_id"]]
        atol = float(r.get("atol") or 0)
        prompt = r["prompt"].strip() if dataset == "humaneval" else r["prompt"]
        problems.append(
            Problem(
                benchmark=name,
                task_id=r["task_id"],
                prompt=prompt,
                base_tests=check_stage("base", dataset, r["entry_point"], atol),
                tests=check_stage("plus", dataset, r["entry_point"], atol),
                data_path=gt["path"],
                entry_point=r["entry_point"],
                reference=r["prompt"] + r["canonical_solution"],
                program_prefix=r["prompt"],
                stop=humaneval.STOP if dataset == "humaneval" else mbpp.STOP,
                # scaled by the reference's own cost, never under the default: a sample computes
                # what the reference did and compares it too (~2x its work), and evalplus's 4x
                # margin comes on top. Measured: Mbpp/255's reference takes 2.3-4.1 s, its
                # reference sample ~8 s of CPU; at 4x the reference it timed out under load.
                timeout=min(MAX_TIMEOUT, max(default_timeout, 2.0 + TIME_FACTOR * float(gt["seconds"]))),
                index=i,
            )
        )
    return Benchmark(name, tuple(problems), source, data_digest=digest)


def load_humanevalplus(data_dir: Path | None, options: LoadOptions) -> Benchmark:
    return _load("humanevalplus", "humaneval", data_dir)


def load_mbppplus(data_dir: Path | None, options: LoadOptions) -> Benchmark:
    return _load("mbppplus", "mbpp", data_dir)


register(BenchmarkSpec("humanevalplus", load_humanevalplus, lambda t: t.startswith("HumanEval/"),
                       "HumanEval+ v0.1.10: HumanEval with 80x more tests (EvalPlus)"))
register(BenchmarkSpec("mbppplus", load_mbppplus, lambda t: t.startswith("Mbpp/"),
                       "MBPP+ v0.2.0: 378 MBPP problems with 35x more tests (EvalPlus)"))
