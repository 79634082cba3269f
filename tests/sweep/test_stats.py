"""Intervals, paired tests, Holm, Pareto fronts and early-signal correlations against scipy on fixed numbers."""

import math

import pandas as pd
import pytest
from scipy import stats

from sweep.ranking import pareto_front
from sweep.stats import early_signal, holm, paired_test, seeds_needed, t_interval, verdict

A = [41.2, 42.9, 40.8, 43.5, 41.9]
B = [40.1, 42.2, 40.5, 42.0, 41.1]


def test_t_interval_matches_scipy():
    got = t_interval(A)
    low, high = stats.t.interval(0.95, len(A) - 1, loc=stats.tmean(A), scale=stats.sem(A))
    assert got.n == 5 and got.mean == pytest.approx(sum(A) / 5)
    assert got.std == pytest.approx(stats.tstd(A))
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    one = t_interval([3.0, None, math.nan])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.low)


def test_paired_test_matches_scipy_and_drops_incomplete_pairs():
    got = paired_test(B, A)
    assert got.p_value == pytest.approx(stats.ttest_rel(B, A).pvalue)
    diffs = [b - a for a, b in zip(A, B)]
    low, high = stats.t.interval(0.95, 4, loc=stats.tmean(diffs), scale=stats.sem(diffs))
    assert (got.diff.mean, got.diff.low, got.diff.high) == (
        pytest.approx(sum(diffs) / 5),
        pytest.approx(low),
        pytest.approx(high),
    )
    partial = paired_test([B[0], None, *B[2:]], A)  # a failed seed drops its pair, and n says so
    assert partial.n == 4 and partial.p_value == pytest.approx(stats.ttest_rel(B[:1] + B[2:], A[:1] + A[2:]).pvalue)
    same = paired_test(A, A)
    assert same.p_value == 1.0 and same.diff.mean == 0.0  # identical runs: no difference, not nan


def test_holm_matches_the_step_down_rule():
    p = [0.01, 0.04, 0.03, math.nan, 0.5]
    got = holm(p)
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.09, max(0.09, 0.08) = 0.09, max(0.09, 0.5) = 0.5
    assert got[0] == pytest.approx(0.04) and got[2] == pytest.approx(0.09) and got[1] == pytest.approx(0.09)
    assert got[4] == pytest.approx(0.5) and math.isnan(got[3])


def test_verdicts():
    assert verdict(-1.0, 0.01) == "better" and verdict(1.0, 0.01) == "worse"
    assert verdict(-1.0, 0.2) == "no difference" and verdict(0.0, math.nan) == "too few seeds"


def test_seeds_needed_is_the_normal_power_formula():
    # (1.96 + 0.84)^2 (1 / 0.5)^2 = 31.4 -> 32 seeds to see a 0.5 FID difference with a 1.0 FID std
    assert seeds_needed(1.0, 0.5) == math.ceil(((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * 2) ** 2)


def test_pareto_front_on_fixed_points():
    pts = [(1.0, 5.0), (2.0, 2.0), (3.0, 1.0), (2.5, 2.5), (1.0, 6.0), (4.0, 1.0), (math.nan, 0.1)]
    assert pareto_front(pts) == [True, True, True, False, False, False, False]


def test_early_signal_matches_scipy():
    frame = pd.DataFrame(
        {
            "status": ["completed"] * 5 + ["stopped"],
            "final_fid": [5.0, 3.0, 4.0, 1.0, 2.0, 9.0],
            "intermediate_fid_100": [6.0, 3.5, 4.1, 2.0, 2.2, 1.0],
            "intermediate_fid_200": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0],
        }
    )
    rows = {r["step"]: r for r in early_signal(frame)}
    done = frame.iloc[:5]
    assert rows[100]["n"] == 5 and rows[100]["spearman"] == pytest.approx(1.0)
    assert rows[200]["spearman"] == pytest.approx(stats.spearmanr(done["final_fid"], done["intermediate_fid_200"])[0])
    assert rows[200]["kendall"] == pytest.approx(stats.kendalltau(done["final_fid"], done["intermediate_fid_200"])[0])


def test_asha_sweeps_warn_when_the_early_signal_ranks_unlike_the_final_fid(capsys):
    from sweep.driver import warn_early_signal

    frame = pd.DataFrame(
        {
            "status": ["completed"] * 4,
            "final_fid": [1.0, 2.0, 3.0, 4.0],
            "intermediate_fid_50": [4.0, 3.0, 2.0, 1.0],  # reversed: pruning on it keeps the worst
            "intermediate_fid_100": [1.0, 2.0, 3.0, 4.0],
        }
    )
    warn_early_signal(frame)
    out = capsys.readouterr().out
    assert "warning: the intermediate FID at step 50" in out and "Spearman -1.00" in out and "n=4" in out
    assert "step 100" not in out
    warn_early_signal(frame.iloc[:2])
    assert "too few to check" in capsys.readouterr().out


def test_a_confirmation_summarizes_every_step_count_the_runs_scored():
    """final_fid and final_fid_nfe<k> each get their interval and paired test (Holm within each step count)."""
    import numpy as np

    from sweep.confirm import summarize_confirmation

    seeds = [1, 2, 3]
    plan = {"seeds": seeds, "level": 0.05, "configs": [
        {"label": "meanflow", "baseline": "meanflow", "config_hash": "m"},
        {"label": "pureflow", "baseline": "pureflow", "config_hash": "p"},
    ]}  # fmt: skip
    fids = {"m": ([0.2, 0.25, 0.22], [0.6, 0.5, 0.55]), "p": ([0.4, 0.42, 0.5], [1.3, 1.4, 1.33])}
    rows = [
        {"config_hash": h, "config.seed": s, "status": "completed", "final_fid": ten[i], "final_fid_nfe1": one[i]}
        for h, (ten, one) in fids.items()
        for i, s in enumerate(seeds)
    ]
    out = summarize_confirmation(rows, plan).set_index("label")
    pure, mean = fids["p"][1], fids["m"][1]
    assert out.loc["pureflow", "delta_mean_nfe1"] == pytest.approx(np.mean(np.subtract(pure, mean)))
    assert out.loc["pureflow", "p_holm_nfe1"] == pytest.approx(stats.ttest_rel(pure, mean).pvalue)
    assert out.loc["pureflow", "mean_fid"] == pytest.approx(np.mean(fids["p"][0]))
    assert out.loc["pureflow", "verdict_nfe1"] == "worse" and out.loc["meanflow", "verdict_nfe1"] == "reference"
    assert out.loc["pureflow", "n_nfe1"] == 3 and "mean_fid_nfe2" not in out
