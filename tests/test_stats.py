"""The statistics and gate decisions, checked against brute force and by simulation."""

from __future__ import annotations

import importlib.util
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_codeeval import gate, junit, stats
from tests.conftest import REPO


# -- Fisher's exact test against counting every way to draw the candidate's samples -------------
def fisher_by_enumeration(c: int, n: int, cb: int, nb: int) -> Fraction:
    """Label the n + nb samples; every n-subset is equally likely to be the candidate's under H0."""
    balls = [True] * (c + cb) + [False] * (n + nb - c - cb)
    subsets = list(itertools.combinations(range(len(balls)), n))
    extreme = sum(1 for s in subsets if sum(balls[i] for i in s) <= c)
    return Fraction(extreme, len(subsets))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_fisher_matches_enumeration(n: int, nb: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n))
    cb = data.draw(st.integers(0, nb))
    assert stats.fisher_worse(c, n, cb, nb) == pytest.approx(float(fisher_by_enumeration(c, n, cb, nb)), abs=1e-15)


def test_fisher_known_values() -> None:
    assert stats.fisher_worse(0, 10, 10, 10) == 1 / math.comb(20, 10)
    assert stats.fisher_worse(10, 10, 0, 10) == 1.0
    assert stats.fisher_worse(3, 10, 3, 10) > 0.5
    with pytest.raises(ValueError):
        stats.fisher_worse(11, 10, 0, 10)


# -- the sign-flip test -------------------------------------------------------------------------
def sign_flip_by_enumeration(d: list[float], margin: float) -> float:
    z = [x + margin for x in d]
    observed = sum(z)
    totals = [sum(s * v for s, v in zip(signs, z)) for signs in itertools.product((1, -1), repeat=len(z))]
    return sum(t <= observed + 1e-9 for t in totals) / len(totals)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([-1.0, -0.5, -0.1, 0.1, 0.3, 1.0]), min_size=1, max_size=10),
       st.sampled_from([0.0, 0.05]))
def test_sign_flip_exact_mode_is_the_enumeration(d: list[float], margin: float) -> None:
    assert stats.sign_flip_test(d, margin) == pytest.approx(sign_flip_by_enumeration(d, margin))


def test_sign_flip_monte_carlo_agrees_with_exact_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    d = list(rng.choice([-0.3, -0.1, 0.1, 0.2], size=20))  # 20 non-zero: Monte Carlo mode
    exact = sign_flip_by_enumeration(d, 0.0)
    p = stats.sign_flip_test(d)
    assert abs(p - exact) < 0.01, (p, exact)
    assert stats.sign_flip_test(d) == p  # fixed seed
    assert stats.sign_flip_test([0.0] * 50) == 1.0  # no difference: no evidence
    assert stats.sign_flip_test([-0.1] * 40) < 1e-4  # every problem worse
    assert stats.sign_flip_test([-0.1] * 40, margin=0.1) == 1.0  # ... but not by more than 0.1


# -- bootstrap intervals ------------------------------------------------------------------------
def test_bootstrap_ci_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    trials = 300
    for _ in range(trials):
        values = list(rng.binomial(10, rng.beta(0.2, 0.5, size=164)) / 10)  # a benchmark's pass@1 per problem
        # the truth for this population: E[p] = 0.2 / 0.7
        lo, hi = stats.bootstrap_ci(values, seed=int(rng.integers(1 << 30)))
        covered += lo <= 0.2 / 0.7 <= hi
    assert 0.90 <= covered / trials <= 0.99, covered / trials


def test_pass_at_k_ci_brackets_the_estimate_and_is_deterministic() -> None:
    counts = [(10, c) for c in (0, 1, 3, 10, 10, 7, 0, 2, 5, 9)]
    for k in (1, 5, 10):
        lo, hi = stats.pass_at_k_ci(counts, k)
        estimate = sum(stats.per_problem_pass_at_k(counts, k)) / len(counts)
        assert lo < estimate < hi
        assert stats.pass_at_k_ci(counts, k) == (lo, hi)
    assert stats.pass_at_k_ci([(10, 10)] * 5, 1) == (1.0, 1.0)


# -- gate pieces --------------------------------------------------------------------------------
def test_parse_threshold() -> None:
    t = gate.parse_threshold("humanevalplus-base:pass@10=0.5")
    assert (t.benchmark, t.k, t.minimum, str(t)) == ("humanevalplus-base", 10, 0.5, "humanevalplus-base:pass@10=0.5")
    for bad in ("humaneval=0.3", "humaneval:pass@0=0.3", "humaneval:pass@1=x", "humaneval:pass@1=-0.1", ":pass@1=0.3"):
        with pytest.raises(ValueError):
            gate.parse_threshold(bad)


def test_thresholds_compare_the_estimate_and_fail_closed() -> None:
    counts = {"humaneval": [(10, 3)] * 4, "humanevalplus-base": [(10, 5)] * 4}
    checks = gate.check_thresholds([gate.parse_threshold("humaneval:pass@1=0.3"),
                                    gate.parse_threshold("humaneval:pass@1=0.31"),
                                    gate.parse_threshold("humanevalplus-base:pass@1=0.5"),
                                    gate.parse_threshold("mbpp:pass@1=0")], counts)
    assert [c.passed for c in checks] == [True, False, True, False]
    assert checks[3].describe() == "mbpp pass@1 not measured (no mbpp problem was judged)"


def test_config_differences_ignore_model_identity_only() -> None:
    base = {"model": "codellama/CodeLlama-7b-hf", "peft_model": None, "temperature": 0.2, "n_samples": 10,
            "generations": ["/a.jsonl"], "workers": 16, "tasks": "humaneval,mbpp"}
    tuned = {"model": "./ckpt", "adapter": "./lora", "precision": "bf16", "load_in_4bit": True, "temperature": 0.2,
             "n_samples": 10, "generations": ["/b.jsonl"], "workers": 2, "tasks": "humaneval"}
    assert gate.config_differences(base, tuned) == []
    assert gate.config_differences(base, {**tuned, "temperature": 0.8, "top_p": 0.95}) == [
        "temperature 0.2 vs 0.8", "top_p null vs 0.95"]


def test_judge_pair_bonferroni_and_tolerance() -> None:
    rec = {"benchmark": "b", "task_id": "T/1", "index": 1, "n": 10, "c": 0}
    assert gate.judge_pair(rec, {"n": 10, "c": 10}, 0.05, 0.0, comparisons=164).regressed  # p = 5.4e-6 < 1.5e-4
    # 10/10 -> 2/10: p = 3.6e-4, significant alone, not after the correction for 164 problems
    assert gate.judge_pair({**rec, "c": 2}, {"n": 10, "c": 10}, 0.05, 0.0, comparisons=1).regressed
    assert not gate.judge_pair({**rec, "c": 2}, {"n": 10, "c": 10}, 0.05, 0.0, comparisons=164).regressed
    # a drop of 0.8 regresses beyond a tolerance of 0.5, not beyond one of 0.8
    assert gate.judge_pair({**rec, "c": 2}, {"n": 10, "c": 10}, 0.05, 0.5, comparisons=1).regressed
    assert not gate.judge_pair({**rec, "c": 2}, {"n": 10, "c": 10}, 0.05, 0.8, comparisons=1).regressed
    v = gate.judge_pair(rec, {"n": 10, "c": 0}, 0.05, 0.0, comparisons=10)
    assert v.unsolved_in_both and not v.regressed
    assert gate.PairVerdict.from_property(v.to_property()) == v


def test_decision_exit_statuses() -> None:
    t_ok = gate.ThresholdCheck(gate.parse_threshold("h:pass@1=0.1"), 0.5)
    t_bad = gate.ThresholdCheck(gate.parse_threshold("h:pass@1=0.9"), 0.5)
    regressed = gate.BenchmarkComparison("h", 10, 0.4, 0.5, (-0.2, -0.01), 0.001, 0.025, 0.0, ())
    fine = gate.BenchmarkComparison("h", 10, 0.5, 0.5, (-0.1, 0.1), 0.6, 0.025, 0.0, ())
    assert gate.Decision([t_ok]).exit_status == 0
    assert gate.Decision([t_bad]).exit_status == gate.EXIT_THRESHOLD == 10
    assert gate.Decision([t_ok], [fine]).exit_status == 0
    assert gate.Decision([t_ok], [regressed]).exit_status == gate.EXIT_REGRESSION == 11
    assert gate.Decision([t_bad], [regressed]).exit_status == 11
    assert gate.Decision([], []).exit_status == 11  # a baseline gate that compared nothing fails
    # the exit statuses do not collide with pytest's own (0-6 as of pytest 9)
    assert {10, 11}.isdisjoint(int(c) for c in pytest.ExitCode)


def test_junit_properties_are_flat() -> None:
    props = [("codeeval_problem", {"benchmark": "humaneval", "task_id": "HumanEval/3"}),
             ("codeeval", {"benchmark": "humaneval", "task_id": "HumanEval/3", "index": 3, "n": 4, "c": 1,
                           "outcomes": ["passed", "failed", "failed", "timeout"]}),
             ("mine", "kept")]
    assert junit.flat_properties(props) == [("benchmark", "humaneval"), ("task_id", "HumanEval/3"), ("n", 4), ("c", 1),
                                            ("pass@1", 0.25), ("mine", "kept")]


# -- the gate's error rates, by simulation (the figures: perf/gate_simulation.py) ---------------
def _simulation():
    spec = importlib.util.spec_from_file_location("gate_simulation", REPO / "perf" / "gate_simulation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("profile", ["low-temperature", "high-temperature"])
def test_false_alarm_rate_is_at_most_alpha(profile: str) -> None:
    sim = _simulation()
    trials, alpha = 300, 0.05
    rate = sim.rate(trials, 2024, sim.PROFILES[profile], drop=0.0, alpha=alpha, tolerance=0.0)
    slack = 2 * math.sqrt(alpha * (1 - alpha) / trials)  # two Monte Carlo standard errors
    assert rate <= alpha + slack, rate


def test_power_to_see_a_five_point_drop() -> None:
    sim = _simulation()
    rate = sim.rate(60, 2024, sim.PROFILES["high-temperature"], drop=0.05, alpha=0.05, tolerance=0.0)
    assert rate >= 0.9, rate
