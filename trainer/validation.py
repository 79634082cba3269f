"""Checks of a trial's configuration: one clear sentence per bad value (``ValueError``), run when it is built.

``TrainConfig.__post_init__`` calls :func:`validate`; nothing here imports ``trainer.config``.
"""

from __future__ import annotations

import dataclasses
import math
import re

from trainer.model import MODEL_SIZES
from trainer.objectives import DISCRETE_WEIGHTS, FM_TIMES, LOSS_REDUCTIONS, TARGETS, TIME_SAMPLERS
from trainer.objectives.schedules import make_schedule, make_traj_params
from trainer.objectives.targets import is_choice
from trainer.objectives.tangent import FD_EPS, TANGENTS
from trainer.presets import PRESETS

DATASETS = ("cifar10", "synthetic")
ALPHA_ROWS = ("step", "uniform")
# ours: below 1e-4 fp32 rounding (2^-23 / eps) passes 1e-3 of u; above 0.05 the O(eps^2) error of the difference grows
FD_EPS_RANGE = (1e-4, 0.05)


def parse_nfe(value) -> tuple:
    """fid_nfe as a sorted tuple of step counts: 2, (1, 2), [1, 2], '1,2' or '(1, 2)' (a CSV's text)."""
    items = value
    if isinstance(value, str):
        items = [v for v in value.strip("()[] ").replace(" ", "").split(",") if v]
    elif not isinstance(value, (tuple, list)):
        items = [value]
    out = []
    for item in items:
        try:
            k = int(item)
        except (TypeError, ValueError):
            k = None
        if (
            k is None
            or isinstance(item, bool)
            or (isinstance(item, float) and not item.is_integer())
            or not 1 <= k <= 1000
        ):
            raise ValueError(f"fid_nfe={value!r} must be step counts from 1 to 1000, e.g. fid_nfe=1,2,10")
        out.append(k)
    return tuple(sorted(set(out)))


SEED_MAX = 2**32 - 1  # the sampler's noise seeds are seed * 1,000,003 + block: this keeps them in 64 bits
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_types(cfg) -> None:
    """Every field's value has its field's type: an int field refuses 1.5 and 1e3, a float refuses nan, inf, words."""
    for f in dataclasses.fields(cfg):
        value, kind = getattr(cfg, f.name), f.type
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{f.name}={value!r} must be an integer")
        if kind.startswith("float") and not (value is None and "None" in kind):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{f.name}={value!r} must be a number")
            if not math.isfinite(value):
                raise ValueError(f"{f.name}={value!r} must be a finite number")
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{f.name}={value!r} must be True or False")
        if kind == "str" and not isinstance(value, str):
            raise ValueError(f"{f.name}={value!r} must be text")


def validate(cfg) -> None:
    """One clear sentence per bad value (ValueError); run when the config is built."""
    check_types(cfg)
    PRESETS[cfg.preset]
    TARGETS[cfg.target]
    TIME_SAMPLERS[cfg.time_sampler]
    if cfg.model not in MODEL_SIZES:
        raise ValueError(f"unknown model size {cfg.model!r}; choose one of: {', '.join(MODEL_SIZES)}")
    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of: {', '.join(DATASETS)}")
    for name, accepted in (
        ("discrete_weight", DISCRETE_WEIGHTS),
        ("loss_reduction", LOSS_REDUCTIONS),
        ("fm_time", FM_TIMES),
        ("alpha_rows", ALPHA_ROWS),
        ("tangent", TANGENTS),
    ):
        if getattr(cfg, name) not in accepted:
            raise ValueError(f"unknown {name} {getattr(cfg, name)!r}; choose one of: {', '.join(accepted)}")
    if not 1 <= cfg.dyadic_levels <= 16:
        raise ValueError(f"dyadic_levels={cfg.dyadic_levels} must be an integer in [1, 16]")
    if not cfg.time_scale > 0:
        raise ValueError(f"time_scale={cfg.time_scale} must be > 0 (1 follows the released DiTs, 1000 is DiT's)")
    if not (0.0 <= cfg.adam_b1 < 1.0 and 0.0 <= cfg.adam_b2 < 1.0):
        raise ValueError(f"adam_b1={cfg.adam_b1} and adam_b2={cfg.adam_b2} must be in [0, 1)")
    if cfg.fid_mode not in ("clean-fid", "standin"):
        raise ValueError(f"unknown fid_mode {cfg.fid_mode!r}; choose clean-fid or standin")
    for name in ("steps", "batch_size", "sample_steps", "fid_samples"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name}={getattr(cfg, name)} must be a positive integer")
    for name in ("eval_every", "eval_samples", "checkpoint_every"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name}={getattr(cfg, name)} must be >= 0")
    if cfg.fid_samples < 2:  # a covariance needs two samples
        raise ValueError(f"fid_samples={cfg.fid_samples} must be at least 2")
    if cfg.eval_samples == 1:
        raise ValueError(f"eval_samples={cfg.eval_samples} must be 0 (off) or at least 2")
    if not 0 <= cfg.seed <= SEED_MAX:
        raise ValueError(f"seed={cfg.seed} must be an integer in [0, {SEED_MAX}]")
    if not DEVICE.fullmatch(cfg.device):
        raise ValueError(f"device {cfg.device!r} is not auto, cpu, cuda or cuda:N")
    if cfg.weight_decay < 0 or cfg.grad_clip < 0:
        raise ValueError(f"weight_decay={cfg.weight_decay} and grad_clip={cfg.grad_clip} must be >= 0")
    if not cfg.lr > 0:
        raise ValueError(f"lr={cfg.lr} must be > 0")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay={cfg.ema_decay} must be in [0, 1)")
    if not cfg.time_std > 0 or (cfg.time_std_r is not None and not cfg.time_std_r > 0):
        raise ValueError(f"time_std={cfg.time_std} and time_std_r={cfg.time_std_r} must be > 0")
    if not 0.0 <= cfg.ratio_r0 <= 1.0:
        raise ValueError(f"ratio_r0={cfg.ratio_r0} must be in [0, 1]")
    if not 0.0 < cfg.interval_start <= 1.0:
        raise ValueError(f"interval_start={cfg.interval_start} must be in (0, 1]")
    if cfg.target_clamp < 0:
        raise ValueError(f"target_clamp={cfg.target_clamp} must be >= 0 (0 disables it)")
    if not 0.0 <= cfg.teacher_decay < 1.0:
        raise ValueError(f"teacher_decay={cfg.teacher_decay} must be in [0, 1)")
    if not cfg.adaptive_eps > 0 or cfg.adaptive_p < 0:
        raise ValueError(f"adaptive weighting needs eps > 0 and p >= 0, got eps={cfg.adaptive_eps}, p={cfg.adaptive_p}")
    if cfg.fid_nfe != parse_nfe(cfg.fid_nfe):
        raise ValueError(f"fid_nfe={cfg.fid_nfe!r} must be a sorted tuple of distinct step counts, e.g. (1, 2, 10)")
    if not FD_EPS_RANGE[0] <= cfg.tangent_eps <= FD_EPS_RANGE[1]:
        raise ValueError(f"tangent_eps={cfg.tangent_eps} must be in [{FD_EPS_RANGE[0]}, {FD_EPS_RANGE[1]}]")
    if (cfg.tangent, cfg.tangent_eps) != ("jvp", FD_EPS) and TARGETS[cfg.target].jvp == "no":
        takers = ", ".join(n for n, r in TARGETS.items() if r.jvp != "no")
        raise ValueError(f"tangent={cfg.tangent} has no effect on target {cfg.target!r}; it applies to: {takers}")
    make_traj_params(cfg.ratio_fm, cfg.alpha)  # checks names, parameters and the [0, 1] range
    strength = make_schedule(cfg.interval_weight, "interval_weight")
    for p in (i / 100 for i in range(101)):
        if not 0.0 <= strength(p) <= 1.0:
            raise ValueError(f"interval_weight reaches {strength(p):.4g} at progress {p:.2f}; it must stay in [0, 1]")
    check_knobs(cfg)


def check_knobs(cfg) -> None:
    """A target's own setting is in its range (or one of its names), and is left at its default by every other
    target."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    for name, rec in TARGETS.items():
        for key, knob in rec.knobs.items():
            value = getattr(cfg, key)
            if name == cfg.target and is_choice(knob) and value not in knob:
                raise ValueError(f"unknown {key} {value!r}; choose one of: {', '.join(knob)}")
            if name == cfg.target and not is_choice(knob) and not knob[0] <= value <= knob[1]:
                raise ValueError(f"{key}={value} must be in [{knob[0]}, {knob[1]}]")
            if value != defaults[key] and key not in TARGETS[cfg.target].knobs:
                owners = [n for n, r in TARGETS.items() if key in r.knobs]
                raise ValueError(
                    f"{key}={value} has no effect on target {cfg.target!r}; it applies to: {', '.join(owners)}"
                )
