"""What a problem's ``--junitxml`` testcase carries: flat, readable properties.

pytest's junitxml writes each ``(name, value)`` of a teardown report's ``user_properties`` as
``<property name=... value="str(value)">``; the plugin's records are dicts (so that xdist carries
them whole), which would print as Python reprs. The plugin swaps them, on the teardown report
only, for the scalars below; the call report, which the plugin and xdist read, keeps the dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_codeeval import gate, metrics, report

IDENTITY = "codeeval_problem"


def flat_properties(properties: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Replace the plugin's dict-valued properties by scalar ones; keep everything else."""
    out: list[tuple[str, Any]] = []
    for name, value in properties:
        if name == IDENTITY and isinstance(value, dict):
            out += [("benchmark", value["benchmark"]), ("task_id", value["task_id"])]
        elif name == report.PROPERTY and isinstance(value, dict):
            n, c = value["n"], value["c"]
            out += [("n", n), ("c", c), ("pass@1", metrics.pass_at_k(n, c, 1))]
            if "c_base" in value:
                out.append(("c_base", value["c_base"]))
        elif name == gate.PAIR_PROPERTY and isinstance(value, dict):
            out += [("baseline_n", value["n_base"]), ("baseline_c", value["c_base"]),
                    ("baseline_pass@1", metrics.pass_at_k(value["n_base"], value["c_base"], 1)),
                    ("regression_p", value["p"]), ("regressed", value["regressed"])]
        else:
            out.append((name, value))
    return out
