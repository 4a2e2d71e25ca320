"""Statistics for honest comparisons: confidence intervals and paired tests over problems.

Pure functions, no I/O, no pytest. Every random procedure takes a seed and works on its input in
the order given, so a run's numbers are reproducible (serial and xdist runs order problems the
same way, by dataset index). The methods and why they were chosen: docs/statistics.md.

- :func:`bootstrap_ci`: percentile bootstrap of a mean over problems (problems are the sampling
  unit: a benchmark is a sample of the problems one cares about, and each problem's estimate
  already carries the noise of its n samples).
- :func:`sign_flip_test`: paired randomization test, one-sided, of "the candidate is worse than
  the baseline by more than ``margin``" on per-problem differences. Exact (all sign patterns)
  when few differences are non-zero, Monte Carlo otherwise.
- :func:`fisher_worse`: one-sided Fisher exact test for a single problem's c/n against c'/n'.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction
from math import comb
from typing import Any

from pytest_codeeval import metrics

CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000
PERMUTATION_RESAMPLES = 20000
EXACT_LIMIT = 16  # enumerate all 2**q sign patterns when at most this many differences are non-zero
SEED = 20240601
CI_METHOD = (f"percentile bootstrap over problems, {BOOTSTRAP_RESAMPLES} resamples, seed {SEED}, "
             f"{CI_LEVEL:.0%} two-sided")


def _numpy() -> Any:
    import numpy  # imported on first use: nothing on pytest's start-up path pays for it

    return numpy


def bootstrap_ci(values: Sequence[float], level: float = CI_LEVEL, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values`` (resampling the values)."""
    if not values:
        raise ValueError("no values to resample")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    np = _numpy()
    x = np.asarray(values, dtype=float)
    if np.all(x == x[0]):  # every resample has the same mean
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(x))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, len(x), size=(stop - start, len(x)))
        means[start:stop] = x[idx].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


def per_problem_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> list[float]:
    """Each problem's unbiased pass@k estimate (n, c) -> 1 - C(n-c, k)/C(n, k)."""
    return [metrics.pass_at_k(n, c, k) for n, c in counts]


def pass_at_k_ci(counts: Sequence[tuple[int, int]], k: int, level: float = CI_LEVEL,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Confidence interval of a benchmark's pass@k: bootstrap over its problems."""
    return bootstrap_ci(per_problem_pass_at_k(counts, k), level, resamples, seed)


def sign_flip_test(differences: Sequence[float], margin: float = 0.0, resamples: int = PERMUTATION_RESAMPLES,
                   seed: int = SEED) -> float:
    """One-sided p-value for H0: mean(differences) >= -margin, against "the mean is below -margin".

    ``differences`` are per-problem (candidate - baseline); a small p says the candidate is worse
    than the baseline by more than ``margin``. The statistic is sum(d_i + margin); its null
    distribution flips the sign of each term (under H0 with margin 0 and exchangeable runs, each
    d_i is symmetric about 0, which makes the test exact). Zero terms carry no information and are
    dropped. p = P(T* <= T_obs), counting ties, over every sign pattern when at most
    :data:`EXACT_LIMIT` terms are non-zero, else (1 + #{T* <= T_obs}) / (1 + resamples).
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    np = _numpy()
    z = np.asarray(differences, dtype=float) + margin
    z = z[np.abs(z) > 1e-12]
    if len(z) == 0:
        return 1.0
    observed = float(z.sum())
    eps = 1e-9 * max(1.0, float(np.abs(z).sum()))
    if len(z) <= EXACT_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(z))))
        totals = signs @ z
        return float(np.count_nonzero(totals <= observed + eps) / len(totals))
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, 2_000_000 // len(z))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        signs = rng.integers(0, 2, size=(rows, len(z)), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(signs @ z <= observed + eps))
    return (1 + hits) / (1 + resamples)


def fisher_worse(c: int, n: int, c_base: int, n_base: int) -> float:
    """One-sided Fisher exact p-value that the candidate's success rate c/n is below the
    baseline's c_base/n_base: P(X <= c) for X hypergeometric with the table's margins."""
    for cc, nn in ((c, n), (c_base, n_base)):
        if not 0 <= cc <= nn or nn < 1:
            raise ValueError(f"need 0 <= c <= n and n >= 1, got c={cc}, n={nn}")
    successes, total = c + c_base, n + n_base
    lowest = max(0, successes - n_base)
    tail = sum(comb(successes, x) * comb(total - successes, n - x) for x in range(lowest, c + 1))
    return float(Fraction(tail, comb(total, n)))


def paired_differences(candidate: Sequence[tuple[int, int]], baseline: Sequence[tuple[int, int]],
                       k: int = 1) -> list[float]:
    """Per-problem pass@k(candidate) - pass@k(baseline), for problems given in the same order."""
    if len(candidate) != len(baseline):
        raise ValueError("candidate and baseline must list the same problems")
    return [metrics.pass_at_k(n, c, k) - metrics.pass_at_k(nb, cb, k)
            for (n, c), (nb, cb) in zip(candidate, baseline)]
