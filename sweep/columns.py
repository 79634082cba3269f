"""The columns of a results row, derived from two records and the sweep's own bookkeeping.

- what a trial *is*: its ``TrainConfig``, one column per flat key under ``config.`` (``config.objective``,
  ``config.alpha.value``, ``config.seed``);
- what a trial *measured*: ``trainer.result.TrialResult``, one column per field (``final_fid``, ``step_ms``, and
  ``final_fid_nfe<k>`` per extra step count);
- what the sweep adds: identity and status, progress, device costs, and the boards' rankings.

Which columns are text, which numbers, and in what order they are written all derive from these; a new
measurement is one field of ``TrialResult``. Tables written before the prefix existed are read with their config
columns renamed (``legacy_columns``).
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pandas as pd

CONFIG = "config."  # the prefix of a row's config columns
IDENTITY = {
    "rank": int, "trial_id": str, "sweep": str, "space": str, "status": str, "error": str, "diverged_step": int,
    "baseline": str,
}  # fmt: skip
# What the sweep adds around a trial's record: how far it got, its device costs (trainable.costs), its life.
PROGRESS = {"step": int}
COSTS = {"gpus": float, "train_gpu_seconds": float, "fid_gpu_seconds": float, "gpu_seconds": float}
LIFE = {"restarts": int, "trial_dir": str, "started_at": str, "finished_at": str}
RANKING = {
    "meanflow_fid": float, "delta_vs_meanflow": float, "device_hours": float, "device_kind": str,
    "pareto": bool, "claim": str,
}  # fmt: skip
INTERMEDIATE = "intermediate_fid_"  # intermediate_fid_<step>: the FID at each evaluation step
CONFIRMED = "confirm_"  # confirm_<column of confirm.csv> on the boards
# A row's config columns always include these, besides the keys its space searched or fixed.
CONFIG_ALWAYS = ("preset", "steps", "seed")

FAILED = ("diverged", "oom", "error")  # statuses of trials that failed (never ranked)
ENDED = ("completed", "stopped", *FAILED)  # a trial with one of these statuses never runs again
STATUSES = ("pending", "running", "completed", "stopped", "interrupted", *FAILED)

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


def measured() -> dict[str, type]:
    """The record's fixed columns and their types (float, int or str), in the record's order."""
    from trainer.result import column_types

    return column_types()


def measured_prefixes() -> dict[str, type]:
    """The column families with a step count in their name and their values' type."""
    from trainer.result import per_nfe_types

    return {**per_nfe_types(), INTERMEDIATE: float}


def is_measurement(key: str) -> bool:
    """Whether a trial's reported key is a column of its row: its record's, its step or its costs."""
    return key in measured() or key in PROGRESS or key in COSTS or _in_family(key, measured_prefixes())


def _in_family(key: str, families) -> bool:
    return any(key.startswith(p) and key[len(p) :].isdigit() for p in families)


def config_types() -> dict[str, type]:
    """``config.<field>`` -> its type, for TrainConfig's plain fields (schedules and tuples are left out)."""
    from trainer.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    out = {}
    for f in dataclasses.fields(TrainConfig):
        kinds = [t for t in (bool, str, int, float) if t is hints[f.name] or t in typing.get_args(hints[f.name])]
        if kinds:
            out[CONFIG + f.name] = kinds[0]
    return out


def column_types() -> dict[str, type]:
    """Every fixed column's type: identity, measurements, progress, costs, life, rankings and config fields."""
    return {**IDENTITY, **measured(), **PROGRESS, **COSTS, **LIFE, **RANKING, **config_types(), "label": str}


def text_columns() -> dict[str, type]:
    """Columns read back as text: an id like 48588e49 or a hash like 1234e56 would otherwise parse as a float."""
    return {c: str for c, t in column_types().items() if t is str}


def numeric_columns(columns) -> list[str]:
    """The ones of ``columns`` that hold numbers (read back from a CSV, each is checked as strictly as a flag's
    value); the types are derived once per call."""
    types, families = column_types(), measured_prefixes()
    kinds = {c: types.get(c) or next((t for p, t in families.items() if _in_family(c, [p])), None) for c in columns}
    return [c for c, kind in kinds.items() if kind in (int, float)]


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The config columns of a table (what a trial *is*), sorted."""
    return sorted(c for c in frame.columns if c.startswith(CONFIG))


def config_row(params: dict, cfg=None) -> dict:
    """A trial's config columns: the keys its space searched or fixed, and ``CONFIG_ALWAYS`` from its config."""
    out = {CONFIG + k: v for k, v in params.items()}
    if cfg is not None:
        out.update({CONFIG + k: getattr(cfg, k) for k in CONFIG_ALWAYS})
    return out


def row_params(row: dict) -> dict:
    """A results row's config keys (without the prefix), back in their types (a CSV gives 7.0 for 7, nan for
    unset)."""
    ints = {c[len(CONFIG) :] for c, t in config_types().items() if t is int}
    out = {}
    for column in param_columns(pd.DataFrame(columns=list(row))):
        key, value = column[len(CONFIG) :], row[column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if hasattr(value, "item"):  # numpy scalars from pandas
            value = value.item()
        if key in ints and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    return out


def legacy_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A table written before config columns had their prefix: every column that is not a known one is a config
    key (and ``seed`` and ``steps``, once written among the measurements, are config keys too)."""
    if frame.empty or any(c.startswith(CONFIG) for c in frame.columns):
        return frame
    known = column_types()
    families = [*measured_prefixes(), CONFIRMED]
    renames = {
        c: CONFIG + c
        for c in frame.columns
        if c in ("seed", "steps") or (c not in known and not any(c.startswith(p) for p in families))
    }
    return frame.rename(columns=renames)


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Identity first, then the config, then the final FID and the rest of the record, then the sweep's columns;
    column families (per step count, confirmations) last."""
    tail = ["final_fid", "meanflow_fid", "delta_vs_meanflow", *measured(), *PROGRESS, *COSTS, *RANKING, *LIFE]
    cols = [c for c in IDENTITY if c in frame] + param_columns(frame)
    cols += [c for c in dict.fromkeys(tail) if c in frame]
    return frame[cols + [c for c in frame.columns if c not in cols]]
