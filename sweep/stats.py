"""How sure a claim is: intervals over seeds, paired tests against MeanFlow, Holm's correction, early-signal checks.

Every function takes plain numbers and is checked against scipy.stats on fixed
inputs (tests/sweep/test_stats.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.05  # two-sided; 95% intervals


@dataclass(frozen=True)
class Interval:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof 1); nan for n < 2
    low: float  # mean - t_{0.975, n-1} std / sqrt(n); nan for n < 2
    high: float


def t_interval(values, level: float = LEVEL) -> Interval:
    """The mean of ``values`` with its (1 - level) t-interval."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Interval(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - level / 2, n - 1)) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    n: int  # seeds where both ran to completion
    diff: Interval  # of (config - reference)
    p_value: float  # two-sided paired t-test; 1.0 when every difference is 0; nan for n < 2


def paired_test(values, reference, level: float = LEVEL) -> Paired:
    """Paired t-test of ``values`` against ``reference`` (equal length, seed by seed; None or nan drops a pair)."""
    pairs = [
        (a, b)
        for a, b in zip(values, reference)
        if a is not None and b is not None and not (math.isnan(a) or math.isnan(b))
    ]
    diffs = [a - b for a, b in pairs]
    interval = t_interval(diffs, level)
    if len(pairs) < 2:
        return Paired(len(pairs), interval, math.nan)
    if all(d == 0 for d in diffs):
        return Paired(len(pairs), interval, 1.0)
    a, b = zip(*pairs)
    return Paired(len(pairs), interval, float(stats.ttest_rel(a, b).pvalue))


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values (nan stays nan and does not count as a comparison)."""
    p = [(v, i) for i, v in enumerate(p_values) if not math.isnan(v)]
    p.sort()
    m, out, running = len(p), [math.nan] * len(p_values), 0.0
    for rank, (value, i) in enumerate(p):
        running = max(running, min(1.0, (m - rank) * value))
        out[i] = running
    return out


def verdict(diff_mean: float, p_adjusted: float, level: float = LEVEL) -> str:
    """better / worse (lower FID is better) when the adjusted p is below ``level``, else no difference."""
    if math.isnan(p_adjusted):
        return "too few seeds"
    if p_adjusted >= level:
        return "no difference"
    return "better" if diff_mean < 0 else "worse"


def seeds_needed(std_diff: float, effect: float, level: float = LEVEL, power: float = 0.8) -> int:
    """Seeds a paired test needs to detect a mean FID difference ``effect`` with this power (normal approximation)."""
    if not effect or math.isnan(std_diff):
        return 0
    z = stats.norm.ppf(1 - level / 2) + stats.norm.ppf(power)
    return max(2, math.ceil((z * std_diff / abs(effect)) ** 2))


def early_signal(frame) -> list[dict]:
    """Rank correlation of each intermediate FID with the final FID over completed trials.

    ``frame`` has ``final_fid``, ``status`` and ``intermediate_fid_<step>``
    columns; one dict per step: step, n, spearman, kendall (nan below n = 3).
    """
    import pandas as pd

    done = frame[frame["status"] == "completed"] if "status" in frame else frame
    out = []
    steps = sorted(int(c.rsplit("_", 1)[1]) for c in frame.columns if c.startswith("intermediate_fid_"))
    for step in steps:
        both = done[["final_fid", f"intermediate_fid_{step}"]].apply(pd.to_numeric, errors="coerce").dropna()
        n = len(both)
        if n >= 3 and both.nunique().min() > 1:
            rho = float(stats.spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic)
            tau = float(stats.kendalltau(both.iloc[:, 0], both.iloc[:, 1]).statistic)
        else:
            rho = tau = math.nan
        out.append({"step": step, "n": n, "spearman": rho, "kendall": tau})
    return out
