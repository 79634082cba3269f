"""The columns of a results row: which hold a trial's config, which its measurements, which are text, which
numbers, and in what order they are written."""

from __future__ import annotations

import math

import pandas as pd

LEAD = ["rank", "trial_id", "sweep", "space", "status", "error", "diverged_step", "baseline"]
TAIL = [
    "final_fid",
    "meanflow_fid",
    "delta_vs_meanflow",
    "best_intermediate_fid",
    "fid_kind",
    "fid_samples",
    "steps",
    "step",
    "final_loss",
    "final_fm_mse",
    "train_seconds",
    "eval_seconds",
    "fid_seconds",
    "wall_seconds",
    "step_ms",
    "gpus",
    "train_gpu_seconds",
    "fid_gpu_seconds",
    "gpu_seconds",
    "gpu_hours",
    "pareto",
    "gpu",
    "seed",
    "config_hash",
    "protocol_version",
    "versions",
    "started_at",
    "finished_at",
    "trial_dir",
    "restarts",
]
FAILED = ("diverged", "oom", "error")  # statuses of trials that failed (never ranked)
ENDED = ("completed", "stopped", *FAILED)  # a trial with one of these statuses never runs again
# Measurement columns with a step count or step in their name (after the fixed ones).
MEASURED_PREFIXES = ("intermediate_fid_", "final_fid_nfe", "fid_kind_nfe", "confirm_")


STATUSES = ("pending", "running", "completed", "stopped", "interrupted", *FAILED)


# Identifiers are text: a trial id like 48588e49 or a hash like 1234e56 would otherwise parse as a float.
TEXT_COLUMNS = {c: str for c in ("trial_id", "sweep", "space", "status", "baseline", "config_hash", "error", "label")}


# Measurement columns that hold numbers (read back from trials.csv, checked as strictly as a flag's value).
NUMERIC = (
    "final_fid", "best_intermediate_fid", "fid_samples", "steps", "step", "seed", "restarts", "diverged_step",
    "train_seconds", "eval_seconds", "fid_seconds", "wall_seconds", "step_ms", "gpus", "train_gpu_seconds",
    "fid_gpu_seconds", "gpu_seconds", "protocol_version", "final_loss", "final_fm_mse",
)  # fmt: skip
NUMERIC_PREFIXES = ("intermediate_fid_", "final_fid_nfe")


CONFIRM_COLUMNS = (
    "n",
    "n_failed",
    "failed_seeds",
    "mean_fid",
    "ci_low",
    "ci_high",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "p_holm",
    "verdict",
)


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The trainer config keys among a table's columns (what a trial *is*), sorted."""
    return sorted(c for c in frame.columns if c not in LEAD + TAIL and not c.startswith(MEASURED_PREFIXES))


def row_params(row: dict) -> dict:
    """A results row's trainer config keys, back in their types (a CSV gives 7.0 for 7, nan for unset)."""
    import dataclasses

    from trainer.config import TrainConfig

    ints = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", int)}
    out = {}
    for key in param_columns(pd.DataFrame(columns=list(row))):
        value = row[key]
        if key == "seed" or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if hasattr(value, "item"):  # numpy scalars from pandas
            value = value.item()
        if key in ints and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    return out


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Identity first, then the searched parameters (sorted), then the measurements."""
    cols = [c for c in LEAD if c in frame] + param_columns(frame) + [c for c in TAIL if c in frame]
    return frame[cols + [c for c in frame.columns if c not in cols]]
