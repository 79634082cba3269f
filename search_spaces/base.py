"""The space registry and the building blocks the families share.

A space's searched keys are *parts*: a :class:`Param` (one key and its range)
or a :class:`Sched` (a schedule family and its parameters). A part suggests
its keys to an Optuna trial and, given a baseline's resolved config, says
which values the baseline takes there, or None where the baseline lies outside
the range: that is how a space finds the baselines that lie in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from trainer.objectives import OBJECTIVES
from trainer.objectives.named import BASELINES
from trainer.objectives.schedules import POSITIVE_FLOOR, SCHEDULES, VALUE, schedule_defaults
from trainer.registry import Registry

SPACES = Registry("search space")


def families() -> list[str]:
    """Every registered schedule family (read when a space runs: a family registered later is searched too)."""
    return list(SCHEDULES)


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


def resolved(flat: dict | str) -> dict:
    """The full flat config of a flat dict or a named objective, every default filled in.

    Schedule parameters get their defaults and ``time_mean_r`` / ``time_std_r``
    of None become the values they stand for, so two configs that train the
    same way resolve to the same dict.
    """
    from trainer.config import from_flat

    flat = from_flat({"objective": flat} if isinstance(flat, str) else flat).to_flat()
    for prefix in ("ratio_fm", "alpha", "interval_weight"):
        for param, default in schedule_defaults(flat[f"{prefix}.schedule"]).items():
            flat.setdefault(f"{prefix}.{param}", default)
    for key in ("time_mean", "time_std"):
        if flat[f"{key}_r"] is None:
            flat[f"{key}_r"] = flat[key]
    return flat


def baseline_point(objective: str, keys: list[str]) -> dict:
    """The values of ``keys`` in a baseline objective's resolved config."""
    flat = resolved(objective)
    return {k: flat[k] for k in keys}


# ------------------------------------------------------------------ parts
class Float(NamedTuple):
    lo: float
    hi: float
    log: bool = False


class Choice(NamedTuple):
    options: tuple


def _holds(spec, value) -> bool:
    if isinstance(spec, Choice):
        return value in spec.options
    return isinstance(value, (int, float)) and not isinstance(value, bool) and spec.lo <= value <= spec.hi


@dataclass(frozen=True)
class Param:
    key: str
    spec: Float | Choice

    def suggest(self, trial) -> None:
        if isinstance(self.spec, Choice):
            trial.suggest_categorical(self.key, list(self.spec.options))
        else:
            trial.suggest_float(self.key, self.spec.lo, self.spec.hi, log=self.spec.log)

    def point(self, flat: dict) -> dict | None:
        value = flat.get(self.key)
        return {self.key: value} if _holds(self.spec, value) else None


# Value ranges, and why: alpha in [0, 1] (a share of the interval: 1 is flow matching on the discrete rows,
# 0 MeanFlow's continuous limit); ratio_fm in [0.25, 1] (MeanFlow's ablation found 25-75% flow-matching rows
# best; below 25% training degrades). Every other parameter's range lives with its schedule (schedules.py).
def schedule_ranges(kind: str, lo: float, hi: float) -> dict:
    """The searched parameters of schedule family ``kind``, values in [lo, hi], from the schedule's record."""
    out, rec = {}, SCHEDULES[kind]
    for param, rng in rec.ranges.items():
        if rng == VALUE:  # a positive family's values start above 0
            out[param] = Float(max(lo, POSITIVE_FLOOR) if rec.positive else lo, hi)
        else:
            out[param] = Float(rng[0], rng[1], log=len(rng) > 2 and rng[2] == "log")
    return out


@dataclass(frozen=True)
class Sched:
    """A schedule family (every registered one unless ``only`` names some) and its parameters' ranges."""

    prefix: str
    lo: float
    hi: float
    only: tuple = ()

    @property
    def families(self) -> list[str]:
        return list(self.only) or families()

    def suggest(self, trial) -> None:
        kind = trial.suggest_categorical(f"{self.prefix}.schedule", self.families)
        for param, spec in schedule_ranges(kind, self.lo, self.hi).items():
            Param(f"{self.prefix}.{param}", spec).suggest(trial)

    def point(self, flat: dict) -> dict | None:
        kind = flat[f"{self.prefix}.schedule"]
        if kind not in self.families:
            return None
        out = {f"{self.prefix}.schedule": kind}
        for param, spec in schedule_ranges(kind, self.lo, self.hi).items():
            got = Param(f"{self.prefix}.{param}", spec).point(flat)
            if got is None:
                return None
            out.update(got)
        return out


def suggest_schedule(trial, prefix: str, lo: float, hi: float) -> None:
    """Suggests ``<prefix>.schedule`` (any registered family) and its parameters, values within [lo, hi]."""
    Sched(prefix, lo, hi).suggest(trial)


def plan_point(parts, flat: dict) -> dict | None:
    """The values a config takes on every part, or None if any lies outside its range."""
    out = {}
    for part in parts:
        got = part.point(flat)
        if got is None:
            return None
        out.update(got)
    return out


def points_in(plan: Callable, fixed_of: Callable, names=None) -> dict[str, dict]:
    """The baselines that lie in a space given as ``plan(target) -> parts`` and ``fixed_of(target) -> keys``.

    A baseline lies in the space when its values fit every part's range and the
    config the space then builds is the baseline's own (same flat config).
    """
    out = {}
    for name in names or BASELINES:
        flat = resolved(name)
        target = OBJECTIVES[name].target
        point = plan_point(plan(target), flat)
        if point is not None and resolved({"target": target, **fixed_of(target), **point}) == flat:
            out[name] = {"target": target, **point}
    return out


@dataclass(frozen=True)
class ByTarget:
    """A space's define-by-run: suggests a target, then ``plan(target)``'s parts; returns ``fixed_of(target)``.

    A module-level class, not a closure: Ray's OptunaSearch pickles the define function with every
    experiment checkpoint, and a closure cannot be pickled (the driver then stops at its first checkpoint).
    ``plan`` and ``fixed_of`` are module-level functions, pickled by name.
    """

    plan: Callable
    fixed_of: Callable

    def __call__(self, trial) -> dict:
        from trainer.objectives import TARGETS

        target = trial.suggest_categorical("target", list(TARGETS))
        for part in self.plan(target):
            part.suggest(trial)
        return self.fixed_of(target)


def register_by_target(name: str, description: str, plan: Callable, fixed_of: Callable) -> SearchSpace:
    """Registers a space that suggests a target, then ``plan(target)``'s parts, and fixes ``fixed_of(target)``.

    Its baselines are found with :func:`points_in`.
    """
    register(name, description, points_in(plan, fixed_of))(ByTarget(plan, fixed_of))
    return SPACES[name]
