"""Ranking completed trials: per kind of FID, against MeanFlow, on the cost front, with what a row may claim.

Rankings never mix kinds of FID: ranks are per ``fid_kind`` (a 5k stand-in score and a 50k clean-fid score
are different numbers).
"""

from __future__ import annotations

import math

import pandas as pd

from sweep.columns import CONFIRM_COLUMNS
from trainer.objectives import OBJECTIVES

PROTOCOL_FID_KIND = "clean-fid/cifar10-train-32/50k/euler10"
MEANFLOW_REFERENCE_FID = OBJECTIVES["meanflow"].reference_fid


def rank(frame: pd.DataFrame, metric: str = "final_fid") -> pd.DataFrame:
    """Completed trials with a measured ``metric``, ranked by it within each fid_kind, with the delta to MeanFlow.

    ``metric``: ``final_fid`` (the protocol's 10-step FID) or a few-step ``final_fid_nfe<k>``. The MeanFlow
    score compared against is the best ``meanflow`` baseline's ``metric`` measured with the same fid_kind and
    protocol version in ``frame``; failing that, the protocol's 41.81 when the metric and kind are the
    protocol's; otherwise no delta. Rows written before protocol versions existed are version 1.

    A config's cost is ``device_hours`` (every seed it ran) on ``device_kind`` (GPU, or CPU for a trial that
    held no GPU): the Pareto front of metric against cost is drawn per fid_kind and device kind, since a
    CPU-hour and a GPU-hour are not one unit.
    """
    if frame.empty or metric not in frame:
        return pd.DataFrame(columns=["rank", *frame.columns, "meanflow_fid", "delta_vs_meanflow"])
    versions = pd.to_numeric(frame.get("protocol_version", pd.Series(index=frame.index, dtype=float)), errors="coerce")
    frame = frame.assign(
        **{metric: pd.to_numeric(frame[metric], errors="coerce")}, protocol_version=versions.fillna(1).astype(int)
    )
    done = frame[(frame["status"] == "completed") & frame[metric].notna()].copy()
    measured = done[done.get("baseline", pd.Series(index=done.index, dtype=object)) == "meanflow"]
    measured = measured.groupby(["fid_kind", "protocol_version"])[metric].min().to_dict()

    def reference(kind, version):
        if (kind, version) in measured:
            return measured[(kind, version)]
        return MEANFLOW_REFERENCE_FID if kind == PROTOCOL_FID_KIND and metric == "final_fid" else math.nan

    refs = [reference(k, v) for k, v in zip(done["fid_kind"], done["protocol_version"])]
    done["meanflow_fid"] = pd.Series(refs, index=done.index, dtype=float)
    done["delta_vs_meanflow"] = done[metric] - done["meanflow_fid"]
    if "gpu_seconds" in done and "config_hash" in done:  # the whole cost of a config: every seed it ran
        cost = pd.to_numeric(done["gpu_seconds"], errors="coerce")  # device-seconds (sweep.trainable.costs)
        done["device_hours"] = cost.groupby(done["config_hash"]).transform("sum") / 3600.0
        done["device_kind"] = device_kinds(done)
        done["pareto"] = fronts(done, [metric, "device_hours"], ["fid_kind", "device_kind"])
    done = done.sort_values(["fid_kind", metric], kind="stable")
    done.insert(0, "rank", done.groupby("fid_kind").cumcount() + 1)
    return done.reset_index(drop=True)


def device_kinds(frame: pd.DataFrame) -> pd.Series:
    """Each row's kind of device: GPU where the trial held GPUs, CPU where it held none ("" where unknown)."""
    gpus = pd.to_numeric(frame.get("gpus", pd.Series(index=frame.index, dtype=float)), errors="coerce")
    return pd.Series(["" if g != g else ("GPU" if g > 0 else "CPU") for g in gpus], index=frame.index, dtype=object)


def fid_columns(frame: pd.DataFrame, first: str = "final_fid") -> list[str]:
    """The final-FID columns ``frame`` holds a value in: ``first`` (the ranked one), then ``final_fid``, then
    ``final_fid_nfe<k>`` by k."""
    few = [c for c in frame if c.startswith("final_fid_nfe") and c[len("final_fid_nfe") :].isdigit()]
    cols = ["final_fid", *sorted(few, key=lambda c: int(c[len("final_fid_nfe") :]))]
    cols = [c for c in cols if c in frame and pd.to_numeric(frame[c], errors="coerce").notna().any()]
    return [first, *[c for c in cols if c != first]] if first in cols else cols


def fronts(frame: pd.DataFrame, objectives: list[str], by: list[str]) -> pd.Series:
    """Whether each row is on the Pareto front (``objectives`` minimised) of the rows sharing its ``by`` values."""
    out = pd.Series(False, index=frame.index)
    for _, idx in frame.groupby(by).groups.items():
        out[idx] = pareto_front(frame.loc[idx, objectives].to_numpy(float))
    return out


def pareto_front(points) -> list[bool]:
    """Which rows of ``points`` (n, k), all minimised, no other row dominates (<= everywhere, < somewhere).

    Rows with a NaN are never on the front.
    """
    import numpy as np

    pts = np.asarray(points, dtype=float)
    ok = ~np.isnan(pts).any(axis=1)
    front = []
    for i, p in enumerate(pts):
        dominated = ok & (pts <= p).all(axis=1) & (pts < p).any(axis=1)
        front.append(bool(ok[i] and not dominated.any()))
    return front


RUN_KEY = ("config_hash", "config.seed")  # one run: a config on a seed


def distinct_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed rows with a final FID, each (config_hash, seed) once (its first finish): a config run again on
    the same seed (a rerun, another sweep) is one run on both the sweep's board and the merged one."""
    if frame.empty or not {"final_fid", "config_hash", "finished_at"} <= set(frame.columns):
        return frame
    done = frame[(frame["status"] == "completed") & frame["final_fid"].notna()]
    return done.sort_values("finished_at", kind="stable").drop_duplicates([c for c in RUN_KEY if c in done])


def attach_confirmations(board: pd.DataFrame, frames: list[pd.DataFrame], metric: str = "final_fid") -> pd.DataFrame:
    """Adds ``confirm_*`` columns (by config_hash) from confirmations (confirm.csv frames) and a ``claim`` column.

    Where several confirmations hold a config, the one with the most seeds wins.
    ``claim`` says what a row may claim against MeanFlow in ``metric``: a
    confirmation's verdict with the paired difference's 95% interval (confirm.csv's
    columns for that step count: ``verdict_nfe1`` ... for ``final_fid_nfe1``), or
    "unconfirmed" for a single-seed delta below 0.
    """
    if board.empty:
        return board
    suffix = "_nfe" + metric[len("final_fid_nfe") :] if metric.startswith("final_fid_nfe") else ""
    if frames and "config_hash" in board:
        conf = pd.concat(frames, ignore_index=True)
        # the metric's own columns where confirm.csv has them (its interval and verdict), else the shared ones
        names = {c: f"{c}{suffix}" if f"{c}{suffix}" in conf else c for c in CONFIRM_COLUMNS}
        conf = conf.sort_values(names["n"], ascending=False, kind="stable").drop_duplicates("config_hash")
        conf = conf[["config_hash", *[names[c] for c in CONFIRM_COLUMNS if names[c] in conf]]]
        conf = conf.rename(columns={names[c]: f"confirm_{c}" for c in CONFIRM_COLUMNS})
        board = board.drop(columns=[c for c in board if c.startswith("confirm_")]).merge(conf, "left", "config_hash")
    board["claim"] = [_claim(row) for row in board.to_dict("records")]
    return board


def _claim(row: dict) -> str:
    verdict = row.get("confirm_verdict")
    if isinstance(verdict, str) and verdict:
        if verdict == "reference":
            return f"reference (n={int(row['confirm_n'])})"
        return (
            f"{verdict}: {row['confirm_delta_mean']:+.4g} FID, 95% CI [{row['confirm_delta_ci_low']:+.4g}, "
            f"{row['confirm_delta_ci_high']:+.4g}] vs meanflow, n={int(row['confirm_n'])}"
        )
    delta = row.get("delta_vs_meanflow")
    return "unconfirmed: one seed, no interval" if isinstance(delta, float) and delta < 0 else ""
