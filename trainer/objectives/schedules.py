"""Schedules of training progress for ``ratio_fm`` and ``alpha``.

A schedule is a named function ``f(progress, **params) -> float`` with progress
in [0, 1] (first step 0, last step 1), registered with ``@schedule(name,
ranges=...)``: its record holds the function and the search range of each
parameter, so a search space needs no per-family branch. A range is
``VALUE`` (the value range the space gives: [0, 1] for alpha, [0.25, 1] for
ratio_fm) or ``(lo, hi)`` / ``(lo, hi, "log")``. Specs are
``ScheduleSpec(name, params)``; ``make_traj_params`` composes a ratio_fm and an
alpha spec into the protocol's ``sample_traj_params(batch_size, cur_step, max_steps, device)``.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Callable

from trainer.registry import Registry

SCHEDULES = Registry("schedule")
VALUE = "value range"  # a parameter that is itself a value of the schedule: searched in the space's range


@dataclass(frozen=True)
class Schedule:
    name: str
    fn: Callable  # f(progress, **params) -> float
    ranges: dict  # parameter -> VALUE or (lo, hi) or (lo, hi, "log"): what a search space explores
    positive: bool = False  # its values must be > 0: VALUE ranges start at POSITIVE_FLOOR


POSITIVE_FLOOR = 1e-4  # ours: the smallest value a positive schedule's searched value takes


def schedule(name: str, *, ranges: dict, positive: bool = False):
    """Registers ``f(progress, **params)`` as schedule ``name`` with the search range of every parameter."""

    def deco(fn):
        params = [p for p in inspect.signature(fn).parameters if p != "progress"]
        if sorted(params) != sorted(ranges):
            raise ValueError(f"schedule {name!r}: ranges {sorted(ranges)} must name exactly its parameters {params}")
        SCHEDULES.register(name)(Schedule(name, fn, dict(ranges), positive))
        return fn

    return deco


# Ranges, and why: values span the space's range; gamma in [5, 50] (log): AlphaFlow's 25 mid-range, 5 a
# nearly linear ramp, 50 nearly a step; a step's position and the sigmoid's window keep away from the ends.
@schedule("constant", ranges={"value": VALUE})
def constant(progress: float, value: float = 0.0) -> float:
    """f(p) = value."""
    return value


@schedule("linear", ranges={"start": VALUE, "end": VALUE})
def linear(progress: float, start: float = 1.0, end: float = 0.0) -> float:
    """f(p) = start + (end - start) * p."""
    return start + (end - start) * progress


@schedule("cosine", ranges={"start": VALUE, "end": VALUE})
def cosine(progress: float, start: float = 1.0, end: float = 0.0) -> float:
    """f(p) = end + (start - end) * (1 + cos(pi p)) / 2: flat at both ends."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


@schedule("step", ranges={"before": VALUE, "after": VALUE, "at": (0.1, 0.9)})
def step(progress: float, before: float = 1.0, after: float = 0.0, at: float = 0.5) -> float:
    """f(p) = before for p < at, else after."""
    return before if progress < at else after


@schedule(
    "sigmoid",
    ranges={
        "start": VALUE,
        "end": VALUE,
        "gamma": (5.0, 50.0, "log"),
        "k_init": (0.0, 0.5),
        "k_end": (0.6, 1.0),
        "eta": (0.001, 0.05, "log"),
    },
)
def sigmoid(
    progress: float,
    start: float = 1.0,
    end: float = 0.0,
    gamma: float = 25.0,
    k_init: float = 0.0,
    k_end: float = 1.0,
    eta: float = 0.005,
) -> float:
    """AlphaFlow's curriculum, from ``start`` to ``end``.

    s(k) = 1 - sigmoid(gamma * (k - k_mid) / (k_end - k_init)), k_mid = (k_init + k_end) / 2,
    clamped: s < eta -> 0 and s > 1 - eta -> 1; f = end + (start - end) * s.
    With start=1, end=0 this is alpha(k) of AlphaFlow (Zhang et al. 2025), with k
    measured as a fraction of the run.
    """
    mid = 0.5 * (k_init + k_end)
    z = gamma * (progress - mid) / (k_end - k_init)
    s = 1.0 - 1.0 / (1.0 + math.exp(-z)) if z > -700 else 1.0
    if s < eta:
        s = 0.0
    elif s > 1.0 - eta:
        s = 1.0
    return end + (start - end) * s


@schedule("warmup", ranges={"start": VALUE, "end": VALUE, "until": (0.05, 1.0)})
def warmup(progress: float, start: float = 0.0, end: float = 1.0, until: float = 0.5) -> float:
    """f(p) = start + (end - start) * min(1, p / until): a linear ramp, then flat (Modular MeanFlow's lambda)."""
    return start + (end - start) * min(1.0, progress / until)


@schedule("power", ranges={"start": VALUE, "end": VALUE, "k": (0.25, 4.0, "log")})
def power(progress: float, start: float = 1.0, end: float = 0.0, k: float = 1.0) -> float:
    """f(p) = end + (start - end) (1 - p^k): s = 1 - (i / T)^k of arXiv 2511.19065's interval weight (k = 1)."""
    return end + (start - end) * (1.0 - progress**k)


# ``final`` is not named ``end``: it is searched on a log scale, and one parameter name has one scale in a study.
@schedule("exponential", ranges={"start": VALUE, "final": (1e-4, 1.0, "log")}, positive=True)
def exponential(progress: float, start: float = 1.0, final: float = 0.01) -> float:
    """f(p) = start * (final / start)^p: geometric, both > 0 (SoFlow's 'Exponent' middle-time schedule)."""
    if not (start > 0 and final > 0):
        raise ValueError(f"the exponential schedule needs start > 0 and final > 0, got start={start}, final={final}")
    return start * (final / start) ** progress


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule by name with its parameters, e.g. ScheduleSpec("linear", {"start": 1, "end": 0})."""

    name: str
    params: dict = field(default_factory=dict)


def schedule_defaults(name: str) -> dict[str, float]:
    """The parameters of schedule ``name`` with their defaults."""
    params = inspect.signature(SCHEDULES[name].fn).parameters
    return {p: param.default for p, param in params.items() if p != "progress"}


def make_schedule(spec: ScheduleSpec, what: str = "schedule") -> Callable[[float], float]:
    """Binds a spec's parameters, rejecting unknown ones with the accepted names."""
    fn = SCHEDULES[spec.name].fn
    accepted = list(schedule_defaults(spec.name))
    unknown = sorted(set(spec.params) - set(accepted))
    for key, value in spec.params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{what} schedule parameter {key}={value!r} must be a finite number")
    if unknown:
        raise ValueError(
            f"{what} schedule {spec.name!r} has no parameter {unknown[0]!r}; it accepts: {', '.join(accepted)}"
        )
    if spec.name == "power" and not spec.params.get("k", 1.0) > 0:
        raise ValueError(f"{what} power k={spec.params['k']} must be > 0")
    if spec.name == "warmup" and not spec.params.get("until", 0.5) > 0:
        raise ValueError(f"{what} warmup until={spec.params['until']} must be > 0 (a share of the run)")
    if spec.name == "sigmoid":
        eta, k0, k1 = spec.params.get("eta", 0.005), spec.params.get("k_init", 0.0), spec.params.get("k_end", 1.0)
        if not 0.0 < eta < 0.5:
            raise ValueError(f"{what} sigmoid eta={eta} is outside (0, 0.5)")
        if not k1 > k0:
            raise ValueError(f"{what} sigmoid needs k_end > k_init, got k_init={k0}, k_end={k1}")
    return functools.partial(fn, **spec.params)


def progress_of(cur_step: int, max_steps: int) -> float:
    """0 at the first step, 1 at the last (steps count from 0)."""
    return min(max(cur_step / max(max_steps - 1, 1), 0.0), 1.0)


def make_traj_params(ratio_spec: ScheduleSpec, alpha_spec: ScheduleSpec):
    """Composes two schedules into the protocol's ``sample_traj_params``.

    Both schedules are checked to stay in [0, 1] over the whole run before any
    training starts. ``batch_size`` and ``device`` are part of the protocol's
    signature; these schedules return Python floats (no device work, no sync).
    """
    ratio_fn = make_schedule(ratio_spec, "ratio_fm")
    alpha_fn = make_schedule(alpha_spec, "alpha")
    for name, fn in (("ratio_fm", ratio_fn), ("alpha", alpha_fn)):
        for i in range(101):
            value = fn(i / 100)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"{name} schedule {fn.func.__name__}{fn.keywords} reaches {value:.4g} at "
                    f"progress {i / 100:.2f}; it must stay within [0, 1]"
                )

    def sample_traj_params(batch_size: int, cur_step: int, max_steps: int, device=None) -> tuple[float, float]:
        p = progress_of(cur_step, max_steps)
        return float(ratio_fn(p)), float(alpha_fn(p))

    return sample_traj_params
