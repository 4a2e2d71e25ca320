"""Computes HumanEval+/MBPP+ expected outputs by running the reference solutions.

Runs in a separate interpreter (``python -I``), never in the pytest process: reference code is
trusted, but it still executes arbitrary dataset code, and a crash must not take pytest down.
Reads a JSON list of jobs on stdin; for each, writes a pickle with the (converted) inputs and
expected outputs of both levels, and prints one JSON line with its timing or its error.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from typing import Any

from pytest_codeeval.benchmarks.evalplus_oracle import MBPP_OUTPUT_NOT_NONE_TASKS, mbpp_deserialize_inputs


def compute(job: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(job["code"], f"<reference {job['task_id']}>", "exec"), namespace)
    fn = namespace[job["entry_point"]]
    not_none = job["dataset"] == "mbpp" and job["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS
    data: dict[str, Any] = {}
    started = time.perf_counter()
    for level in ("base", "plus"):
        inputs = job[f"{level}_input"]
        if job["dataset"] == "mbpp":
            inputs = mbpp_deserialize_inputs(job["task_id"], inputs)
        expected = []
        for inp in inputs:
            # the reference may mutate its arguments: the sample must get them untouched
            out = fn(*pickle.loads(pickle.dumps(inp)))
            expected.append(out is not None if not_none else out)
        data[level] = (inputs, expected)
    elapsed = time.perf_counter() - started
    with open(job["path"], "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {"task_id": job["task_id"], "seconds": elapsed}


def main() -> None:
    sys.set_int_max_str_digits(0)
    sys.setrecursionlimit(100000)
    for job in json.load(sys.stdin):
        try:
            result = compute(job)
        except BaseException as e:  # a dataset defect: reported, the rest still computed
            result = {"task_id": job["task_id"], "error": f"{type(e).__name__}: {e}"[:500]}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
