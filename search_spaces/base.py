"""The space registry and the building blocks the families share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from trainer.objectives import OBJECTIVES
from trainer.objectives.schedules import schedule_defaults
from trainer.registry import Registry

SPACES = Registry("search space")


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str  # one line, shown by --list-spaces
    define: Callable  # define(trial) -> dict of fixed flat keys; suggests the searched ones
    points: list = field(default_factory=list)  # baseline param dicts evaluated first
    point_names: list = field(default_factory=list)  # which baseline each point is

    def baseline_of(self, config: dict) -> str | None:
        """The baseline whose point ``config`` holds (a trial's config has the point's keys and more), else None."""
        for name, point in zip(self.point_names, self.points):
            if all(config.get(k) == v for k, v in point.items()):
                return name
        return None


def register(name: str, description: str, baselines: dict[str, dict] | None = None):
    """Registers ``define`` as space ``name``; ``baselines`` maps a baseline's name to its params in this space."""

    def deco(define):
        pts = baselines or {}
        SPACES.register(name)(SearchSpace(name, description, define, list(pts.values()), list(pts)))
        return define

    return deco


def baseline_point(objective: str, keys: list[str]) -> dict:
    """The values of ``keys`` in a baseline objective's flat config (schedule defaults filled in)."""
    flat = OBJECTIVES[objective].flat()
    for prefix in ("ratio_fm", "alpha"):
        for param, default in schedule_defaults(flat[f"{prefix}.schedule"]).items():
            flat.setdefault(f"{prefix}.{param}", default)
    missing = [k for k in keys if k not in flat]
    if missing:
        raise KeyError(f"baseline {objective} has no value for {missing}")
    return {k: flat[k] for k in keys}


# ------------------------------------------------------------ shared blocks
# Ranges, and why:
# - alpha in [0, 1]: alpha is a share of the interval (1 is flow matching on the
#   discrete rows, 0 is MeanFlow's continuous limit).
# - gamma in [5, 50] (log): AlphaFlow's 25 sits mid-range; 5 is a nearly linear
#   ramp, 50 nearly a step.
# - ratio_fm in [0.25, 1]: MeanFlow's ablation found 25-75% flow-matching rows
#   best; below 25% training degrades, 1 is plain flow matching.


def suggest_schedule(trial, prefix: str, families: list[str], lo: float, hi: float) -> None:
    """Suggests ``<prefix>.schedule`` and the chosen family's parameters within [lo, hi]."""
    kind = trial.suggest_categorical(f"{prefix}.schedule", families)
    if kind == "constant":
        trial.suggest_float(f"{prefix}.value", lo, hi)
    elif kind in ("linear", "cosine"):
        trial.suggest_float(f"{prefix}.start", lo, hi)
        trial.suggest_float(f"{prefix}.end", lo, hi)
    elif kind == "step":
        trial.suggest_float(f"{prefix}.before", lo, hi)
        trial.suggest_float(f"{prefix}.after", lo, hi)
        trial.suggest_float(f"{prefix}.at", 0.1, 0.9)
    elif kind == "sigmoid":
        trial.suggest_float(f"{prefix}.start", lo, hi)
        trial.suggest_float(f"{prefix}.end", lo, hi)
        trial.suggest_float(f"{prefix}.gamma", 5.0, 50.0, log=True)
        trial.suggest_float(f"{prefix}.k_init", 0.0, 0.5)
        trial.suggest_float(f"{prefix}.k_end", 0.6, 1.0)
        trial.suggest_float(f"{prefix}.eta", 0.001, 0.05, log=True)
