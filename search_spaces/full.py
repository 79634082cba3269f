"""``full``: a conditional space over targets, both schedules, loss weighting and time sampling.

Time sampling: logit-normal location in [-2, 0.5] and scale in [0.6, 2.0] for
t and, separately, for t_next (MeanFlow's ablation band around its ImageNet
(-0.4, 1.0) widened to hold its CIFAR-10 (-2, 2)); flow-matching rows' time
single or max; the time embedding's scale 1 (the released DiTs) or 1000
(DiT's); the interval curriculum starts at 5-100% of the interval lengths (1 is
off); the share of interval rows jumping to 0 (TiM's) in [0, 0.5]; bf16 autocast on or off; for targets
that take a JVP, the tangent (jvp or fd, TiM's central difference).
"""

from search_spaces.base import Choice, Float, Param, Sched, register_by_target
from search_spaces.target_variants import LOSS, NO_ALPHA, knob_parts
from trainer.config import ALPHA_ROWS
from trainer.objectives import DISCRETE_WEIGHTS, FM_TIMES, TARGETS
from trainer.objectives.tangent import TANGENTS

TIME = [
    Param("time_mean", Float(-2.0, 0.5)),
    Param("time_std", Float(0.6, 2.0)),
    Param("time_mean_r", Float(-2.0, 0.5)),
    Param("time_std_r", Float(0.6, 2.0)),
    Param("fm_time", Choice(FM_TIMES)),
    Param("interval_start", Float(0.05, 1.0)),
    Param("ratio_r0", Float(0.0, 0.5)),
    Param("time_scale", Choice((1.0, 1000.0))),
    Param("amp", Choice((False, True))),
]


def plan(target: str) -> list:
    rec = TARGETS[target]
    parts = [Sched("ratio_fm", 0.25, 1.0)]
    if rec.uses_alpha:
        parts.append(Sched("alpha", 0.0, 1.0))
    if rec.discrete:
        parts += [Param("discrete_weight", Choice(DISCRETE_WEIGHTS)), Param("alpha_rows", Choice(ALPHA_ROWS))]
    if rec.teacher:
        parts.append(Param("teacher_decay", Float(0.9, 0.9999)))
    if rec.clamps:
        parts.append(Param("target_clamp", Choice((0.0, 2.0, 4.0, 8.0))))
    if rec.jvp != "no":
        parts.append(Param("tangent", Choice(TANGENTS)))
    return parts + knob_parts(target) + LOSS + TIME


def fixed_of(target: str) -> dict:
    return {} if TARGETS[target].uses_alpha else dict(NO_ALPHA)


register_by_target(
    "full",
    "targets x ratio_fm schedules x alpha schedules x loss weighting x time sampling",
    plan,
    fixed_of,
)
