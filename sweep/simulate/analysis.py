"""What the simulated sweeps found, and what the driver spent: read from each run's log and tables.

- **Best true FID against GPU-hours.** Trials are taken in the order they ended (their last log line);
  GPU-hours are those of the trials ended so far (a stopped trial counts what it ran). The incumbent is the
  completed trial with the lowest *measured* final FID, the one a researcher would pick; what is plotted is
  its *true* FID (the surface without noise), so a lucky seed does not pass for a good config.
- **To reach random's best.** Within a repetition every strategy searches the same landscape: random
  search's incumbent at the end of its whole budget sets the bar, and each strategy's GPU-hours to an
  incumbent at least as good are divided by random's whole budget (inf: never reached).
- **Driver overhead.** Per result: the driver's CPU in Tune's handling of each reported result (the
  scheduler, the searcher, the callbacks and tables, Tune's bookkeeping), timed around it. Per trial: all the
  rest of the driver process's CPU (every thread: suggestions, starts and ends, its loop's polling), divided
  by the trials. And the simulated GPUs' idle time per trial: the fit's wall time times the GPUs, less the
  seconds the trials slept, per trial.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from pathlib import Path

import pandas as pd

from sweep.simulate.runner import Run


def read_log(path: Path) -> pd.DataFrame:
    """Each trial's last line: trial, step, gpu_s, true_fid, t, fid, final (a damaged line is skipped)."""
    lines = []
    for line in Path(path).read_text().splitlines() if Path(path).is_file() else []:
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    if not lines:
        return pd.DataFrame(columns=["trial", "step", "gpu_s", "true_fid", "t", "fid", "final"])
    frame = pd.DataFrame(lines)
    frame["final"] = frame["final"].fillna(False).astype(bool) if "final" in frame else False
    frame["results"] = frame.groupby("trial")["step"].transform("size")
    return frame.sort_values(["trial", "step"]).groupby("trial").tail(1).sort_values("t").reset_index(drop=True)


def curve(run: Run) -> pd.DataFrame:
    """The run's incumbent after each ended trial: gpu_hours spent, incumbent's measured and true FID."""
    ends = read_log(run.log)
    rows, best = [], None
    for spent, (_, trial) in zip(ends["gpu_s"].cumsum() / 3600, ends.iterrows()):
        if trial["final"] and (best is None or trial["fid"] < best["fid"]):
            best = trial
        rows.append(
            {
                "strategy": run.strategy,
                "rep": run.rep,
                "gpu_hours": spent,
                "incumbent_fid": best["fid"] if best is not None else math.nan,
                "incumbent_true_fid": best["true_fid"] if best is not None else math.nan,
            }
        )
    return pd.DataFrame(rows)


def hours_to(frame: pd.DataFrame, bar: float) -> float:
    """GPU-hours at which the incumbent's true FID first reaches ``bar`` (inf: never)."""
    hit = frame[frame["incumbent_true_fid"] <= bar + 1e-12]
    return float(hit["gpu_hours"].iloc[0]) if len(hit) else math.inf


def search_summary(curves: pd.DataFrame, best: float | None = None) -> pd.DataFrame:
    """Per strategy over repetitions: GPU-hours spent, the final incumbent's true FID (median, quartiles), its
    median at random search's whole budget, and the share of that budget needed to reach random's final
    incumbent (median, and in how many repetitions).

    With ``best`` (the landscape's lowest true FID) also the simple regret (incumbent's true FID - best):
    median and quartiles at the end and at random's budget, and in how many repetitions it is below random's
    there (paired: the same landscape noise and search seed)."""
    out = []
    for strategy, runs in curves.groupby("strategy", sort=False):
        spent, final, at_budget, ratio, wins = [], [], [], [], []
        for rep, frame in runs.groupby("rep"):
            spent.append(frame["gpu_hours"].iloc[-1])
            final.append(frame["incumbent_true_fid"].iloc[-1])
            rand = curves[(curves["strategy"] == "random") & (curves["rep"] == rep)]
            if len(rand):
                budget = rand["gpu_hours"].iloc[-1]
                ratio.append(hours_to(frame, rand["incumbent_true_fid"].iloc[-1]) / budget)
                within = frame[frame["gpu_hours"] <= budget + 1e-9]["incumbent_true_fid"]
                at_budget.append(within.iloc[-1] if len(within) else math.nan)
                wins.append(at_budget[-1] < rand["incumbent_true_fid"].iloc[-1] - 1e-12)
        reached = [r for r in ratio if math.isfinite(r)]
        out.append(
            {
                "strategy": strategy,
                "reps": len(spent),
                "gpu_hours": statistics.median(spent),
                "true_fid_median": statistics.median(final),
                "true_fid_q25": _quantile(final, 0.25),
                "true_fid_q75": _quantile(final, 0.75),
                "true_fid_at_random_budget": _quantile(at_budget, 0.5),
                "budget_share_to_random_best": statistics.median(ratio) if ratio else math.nan,
                "reps_reaching_random_best": f"{len(reached)}/{len(ratio)}",
            }
        )
        if best is not None:
            regret, at = [v - best for v in final], [v - best for v in at_budget]
            out[-1].update(
                {
                    "regret_median": statistics.median(regret),
                    "regret_q25": _quantile(regret, 0.25),
                    "regret_q75": _quantile(regret, 0.75),
                    "regret_at_random_budget": _quantile(at, 0.5),
                    "regret_at_random_budget_q25": _quantile(at, 0.25),
                    "regret_at_random_budget_q75": _quantile(at, 0.75),
                    "reps_better_than_random": f"{sum(wins)}/{len(wins)}",
                }
            )
    return pd.DataFrame(out)


def _quantile(values, q: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return math.nan
    pos = q * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def overhead(run: Run, model) -> dict:
    """The driver's cost in one run: CPU per trial and per result (upper bounds), GPU idle per trial."""
    ends = read_log(run.log)
    trials, results = len(ends), int(ends["results"].sum()) if len(ends) else 0
    busy = model.scale * float(ends["gpu_s"].sum())  # real seconds the trials slept
    return {
        "strategy": run.strategy,
        "trials": run.trials,
        "gpus": run.gpus,
        "trials_run": trials,
        "results": results,
        "wall_s": run.wall_s,
        "driver_cpu_s": run.driver_cpu_s,
        "results_handled": run.results_handled,
        # each result's handling, timed; everything else the driver spent, per trial (its loop's polling too)
        "driver_cpu_ms_per_result": 1000 * run.result_cpu_s / max(run.results_handled, 1),
        "driver_cpu_s_per_trial": (run.driver_cpu_s - run.result_cpu_s) / max(trials, 1),
        "idle_gpu_s_per_trial": (run.wall_s * run.gpus - busy) / max(trials, 1),
    }


def plot_curves(curves: pd.DataFrame, path: Path, title: str) -> None:
    """Median incumbent true FID against GPU-hours per strategy, the band between quartiles of repetitions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    top = curves["gpu_hours"].max()
    grid = np.linspace(0, top, 200)
    for strategy, runs in curves.groupby("strategy", sort=False):
        series = []
        for _, frame in runs.groupby("rep"):
            idx = np.searchsorted(frame["gpu_hours"].to_numpy(), grid, side="right") - 1
            vals = np.where(idx >= 0, frame["incumbent_true_fid"].to_numpy()[np.clip(idx, 0, None)], np.nan)
            vals[grid > frame["gpu_hours"].iloc[-1]] = np.nan  # this repetition's budget is spent
            series.append(vals)
        arr = np.array(series)
        with warnings.catch_warnings():  # a grid point every repetition has passed is all-NaN: left blank
            warnings.simplefilter("ignore", RuntimeWarning)
            med, q25, q75 = [np.nanquantile(arr, q, axis=0) for q in (0.5, 0.25, 0.75)]
        few = np.isfinite(arr).sum(axis=0) < len(series) / 2  # past most repetitions' budgets: not a median
        med[few] = q25[few] = q75[few] = np.nan
        (line,) = ax.plot(grid, med, label=strategy)
        ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.15)
    rand = curves[curves["strategy"] == "random"]
    if len(rand):  # the common budget: random search's whole one
        budget = rand.groupby("rep")["gpu_hours"].max().median()
        ax.axvline(budget, color="grey", lw=0.8, ls=":")
        ax.set_xlim(0, 1.15 * budget)
    ax.set_xlabel("simulated GPU-hours spent (ended trials)")
    ax.set_ylabel("true FID of the incumbent")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
