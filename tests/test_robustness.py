"""ReCode's metrics (pytest_codeeval.robustness) against values worked out by hand from the
definitions in shared/data/README.md ("recode/ ... Metrics")."""

from __future__ import annotations

import pytest

from pytest_codeeval import robustness
from pytest_codeeval.robustness import ItemKey, compute, parse

P, F = True, False


def test_task_ids_parse_into_kind_transformation_seed_and_problem() -> None:
    assert parse("nominal/HumanEval/0") == ItemKey("nominal", "", 0, "HumanEval/0")
    assert parse("nominal_partial/MBPP/3") == ItemKey("nominal_partial", "", 0, "MBPP/3")
    assert parse("natgen/VarRenamerRN/s3/HumanEval/12") == ItemKey("natgen", "VarRenamerRN", 3, "HumanEval/12")
    for other in ("HumanEval/0", "natgen/VarRenamerRN/HumanEval/12", "natgen/X/sx/HumanEval/1", "nominal/",
                  "syntax/X/s0/HumanEval/1"):
        assert parse(other) is None, other


# Greedy (n = k = 1), category natgen (baseline: the partial nominal), problems A, B, C.
#   nominal_partial: A pass, B pass, C fail
#   T1 (2 seeds):    A P P,  B P F,  C F P
#   T2 (1 seed):     A F,    B P,    C F
GREEDY = {
    "nominal_partial/A": [P], "nominal_partial/B": [P], "nominal_partial/C": [F],
    "nominal/A": [F], "nominal/B": [F], "nominal/C": [F],  # the full nominal is not natgen's baseline
    "natgen/T1/s0/A": [P], "natgen/T1/s1/A": [P],
    "natgen/T1/s0/B": [P], "natgen/T1/s1/B": [F],
    "natgen/T1/s0/C": [F], "natgen/T1/s1/C": [P],
    "natgen/T2/s0/A": [F], "natgen/T2/s0/B": [P], "natgen/T2/s0/C": [F],
    "HumanEval/0": [P],  # not a ReCode id: ignored
}


def test_greedy_per_transformation() -> None:
    result = compute(GREEDY, [1])
    t1, t2 = result.transformations["natgen/T1"], result.transformations["natgen/T2"]
    # T1: Pass 2/3; only A passes both seeds: RP 1/3; RD (2/3 - 1/3) / (2/3) = 1/2;
    # B turned fail (rc-), C turned pass on one seed (rc+): RR 2/3
    assert (t1.s, t1.problems, t1.n) == (2, 3, 1)
    assert t1.pass_at_k[1] == pytest.approx(2 / 3)
    assert t1.robust_pass[1] == pytest.approx(1 / 3)
    assert t1.robust_drop[1] == pytest.approx(0.5)
    assert t1.robust_relative[1] == pytest.approx(2 / 3)
    # T2: only B passes: RP 1/3, RD 1/2; A changed (pass -> fail): RR 1/3
    assert t2.s == 1
    assert t2.robust_pass[1] == pytest.approx(1 / 3)
    assert t2.robust_drop[1] == pytest.approx(0.5)
    assert t2.robust_relative[1] == pytest.approx(1 / 3)


def test_greedy_category_is_the_worst_case_over_every_transformation_and_seed() -> None:
    cat = compute(GREEDY, [1]).categories["natgen"]
    # all of T1 s0, T1 s1, T2 s0: A fails T2, B fails T1 s1, C fails T1 s0 -> RP 0, RD 100 %;
    # A and B went pass -> fail, C fail -> pass on T1 s1: every problem changed, RR 100 %
    assert (cat.s, cat.problems) == (2, 3)
    assert cat.pass_at_k[1] == pytest.approx(2 / 3)
    assert cat.robust_pass[1] == 0
    assert cat.robust_drop[1] == pytest.approx(1.0)
    assert cat.robust_relative[1] == pytest.approx(1.0)


def test_sampled_pairs_samples_by_index_and_estimates_pass_at_k() -> None:
    # n = 2, one problem, func_name (baseline: the full nominal):
    #   nominal [P, F] -> c = 1: pass@1 = 1/2, pass@2 = 1 - C(1,2)/C(2,2) = 1
    #   s0 [P, P], s1 [F, P]: sample 0 fails s1, sample 1 passes both -> rc = 1: RP@1 1/2, RP@2 1
    #   rc- = 1 (sample 0: nominal pass, s1 fail), rc+ = 1 (sample 1: nominal fail, passes some)
    #   RR@1 = 1/2 + 1/2 = 1; RR@2 = 1 + 1 = 2
    verdicts = {"nominal/X": [P, F], "func_name/R/s0/X": [P, P], "func_name/R/s1/X": [F, P]}
    t = compute(verdicts, [1, 2, 5]).transformations["func_name/R"]
    assert t.n == 2 and sorted(t.pass_at_k) == [1, 2]  # k = 5 > n is left out
    assert (t.pass_at_k[1], t.pass_at_k[2]) == (0.5, 1.0)
    assert (t.robust_pass[1], t.robust_pass[2]) == (0.5, 1.0)
    assert (t.robust_drop[1], t.robust_drop[2]) == (0.0, 0.0)
    assert (t.robust_relative[1], t.robust_relative[2]) == (1.0, 2.0)


def test_a_problem_without_its_nominal_is_not_counted_and_a_zero_pass_has_no_drop() -> None:
    verdicts = {"nominal/A": [F], "nlaugmenter/B/s0/A": [P], "nlaugmenter/B/s0/Z": [F]}
    t = compute(verdicts, [1]).transformations["nlaugmenter/B"]
    assert t.problems == 1  # Z has no nominal item
    assert t.pass_at_k[1] == 0 and t.robust_drop[1] is None
    assert t.robust_relative[1] == 1.0  # A went fail -> pass


def test_from_records_reads_outcomes_and_the_table_prints_percent() -> None:
    records = [{"task_id": "nominal/A", "outcomes": ["passed"]},
               {"task_id": "nominal/B", "outcomes": ["passed"]},
               {"task_id": "func_name/R/s0/A", "outcomes": ["passed"]},
               {"task_id": "func_name/R/s0/B", "outcomes": ["timeout"]}]
    result = robustness.from_records(records, [1])
    header, rows = robustness.table_rows(result, [1])
    assert header == ["perturbation", "s", "problems", "pass@1", "RP_s@1", "RD_s@1", "RR_s@1"]
    assert rows == [["func_name (function name)", "1", "2", "1.0000", "0.5000", "50.00%", "50.00%"],
                    ["  R", "1", "2", "1.0000", "0.5000", "50.00%", "50.00%"]]
    doc = result.to_json()
    assert doc["categories"]["func_name"] == {"s": 1, "problems": 2, "n": 1, "pass@1": 1.0, "robust_pass@1": 0.5,
                                              "robust_drop@1": 0.5, "robust_relative@1": 0.5}
