"""Does the baseline gate keep its promise? False alarms and power, by simulation.

    python perf/gate_simulation.py                      # the figures in docs/statistics.md
    python perf/gate_simulation.py --trials 500 --seed 7

Each trial draws a benchmark of 164 problems (HumanEval's size) whose per-problem solve rates p_i
come from a Beta distribution fitted to a real model's pass@1/10/100 (profiles below), then two
runs of n = 10 samples per problem: c_i ~ Binomial(n, p_i) for the baseline and c'_i ~
Binomial(n, p'_i) for the candidate. The gate is the plugin's own code (gate.judge_pair per
problem, then gate.compare per benchmark), so what is measured is what CI runs.

- false alarms: p'_i = p_i (the same model resampled); the gate must fail in at most alpha of trials
  (and for a drop of exactly the tolerance, too).
- power: p'_i = expit(logit(p_i) - s), with s chosen per trial so that the mean solve rate drops by
  exactly 5 points: easy and hopeless problems move little, middling ones a lot, as fine-tunes do.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_codeeval import gate  # noqa: E402

# Beta(a, b) whose pass@1/10/100 (1 - B(a, b+k)/B(a, b)) match a published row, least squares
PROFILES = {
    # the seed's DeepseekCoder-1.3B row at temperature 0.1: 32.5 / 39.7 / 45.1 -> 32.1 / 39.8 / 45.8
    "low-temperature": (0.045, 0.095),
    # Codex-12B at temperature 0.8 (Chen et al. 2021): 28.8 / 46.8 / 72.3 -> 26.4 / 51.6 / 69.0
    "high-temperature": (0.195, 0.545),
}
PROBLEMS = 164
N = 10


def _shifted(p: np.ndarray, drop: float) -> np.ndarray:
    """p' = expit(logit(p) - s) with mean(p') = mean(p) - drop (bisection on s)."""
    if drop == 0:
        return p
    q = np.clip(p, 1e-9, 1 - 1e-9)
    logit = np.log(q) - np.log1p(-q)
    target = p.mean() - drop
    lo, hi = 0.0, 40.0
    for _ in range(80):
        s = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit - s)))).mean() > target:
            lo = s
        else:
            hi = s
    return 1 / (1 + np.exp(-(logit - (lo + hi) / 2)))


def trial(rng: np.random.Generator, profile: tuple[float, float], drop: float, alpha: float, tolerance: float,
          problems: int = PROBLEMS, n: int = N) -> bool:
    """One simulated comparison: does the gate fail?"""
    p = rng.beta(*profile, size=problems)
    p_cand = _shifted(p, drop)
    c_base = rng.binomial(n, p)
    c_cand = rng.binomial(n, p_cand)
    verdicts = []
    for i in range(problems):
        record = {"benchmark": "sim", "task_id": f"Sim/{i}", "index": i, "n": n, "c": int(c_cand[i])}
        verdicts.append(gate.judge_pair(record, {"n": n, "c": int(c_base[i])}, alpha, tolerance, problems))
    return any(c.regressed for c in gate.compare(verdicts, alpha, tolerance))


def rate(trials: int, seed: int, profile: tuple[float, float], drop: float, alpha: float, tolerance: float) -> float:
    rng = np.random.default_rng(seed)
    return sum(trial(rng, profile, drop, alpha, tolerance) for _ in range(trials)) / trials


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000, help="trials per figure (default 2000)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--alpha", type=float, default=0.05)
    args = ap.parse_args(argv)
    se = math.sqrt(args.alpha * (1 - args.alpha) / args.trials)
    print(f"baseline gate, {PROBLEMS} problems, n = {N} samples each, alpha = {args.alpha}, "
          f"{args.trials} trials per figure, seed {args.seed} (Monte Carlo SE at alpha: {se:.4f})")
    print(f"{'profile':<17} {'true drop':>9} {'tolerance':>9} {'gate fails':>10}  meaning")
    started = time.monotonic()
    cases = [(0.0, 0.0, "false-alarm rate (same model)"),
             (0.02, 0.02, "false-alarm rate (drop = tolerance)"),
             (0.05, 0.0, "power, 5-point drop"),
             (0.05, 0.01, "power, 5-point drop"),
             (0.05, 0.02, "power, 5-point drop")]
    for name, profile in PROFILES.items():
        for drop, tolerance, meaning in cases:
            r = rate(args.trials, args.seed, profile, drop, args.alpha, tolerance)
            print(f"{name:<17} {drop:>9.2f} {tolerance:>9.2f} {r:>10.4f}  {meaning}", flush=True)
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
