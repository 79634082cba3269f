"""``target_variants``: which target, with its own knobs, and how the loss is weighted.

Each target starts from its named objective (the same name) where there is
one, else from MeanFlow's ratio_fm 0.75 with alpha 0. What is searched comes
from the target's record: alpha (and the discrete weight) only for targets
that use alpha, the teacher's rate for teacher targets, the clamp for targets
that clip.

Ranges, and why:
- adaptive power p in [0, 1.5]: 0 is plain MSE (what self-consistency targets
  need), MeanFlow found 0.5-1 best; eps in [1e-4, 1e-1] (log) around 1e-3.
- target clamp in {0 (off), 2, 4, 8}: AlphaFlow and Shortcut clip at 4.
- alpha: the shape of the objective's curriculum (the first parameter of its
  schedule family that is not a value: sigmoid's sharpness gamma in [5, 50],
  warmup's length, exponential's end), else a constant split fraction in
  [0.1, 1] (0 makes the split degenerate); the discrete weight only where
  alpha is a discrete step.
- a target's own knobs (``tangent_beta``) over the range its record gives.
- teacher_decay in [0.9, 0.9999]: an EMA horizon of 10 to 10,000 steps.
"""

from search_spaces.base import Choice, Float, Param, register_by_target, schedule_ranges
from trainer.objectives import DISCRETE_WEIGHTS, LOSS_REDUCTIONS, OBJECTIVES, TARGETS
from trainer.objectives.schedules import SCHEDULES, VALUE

NO_ALPHA = {"alpha.schedule": "constant", "alpha.value": 0.0}


def own_objective(target: str) -> str | None:
    obj = OBJECTIVES.get(target)
    return target if obj is not None and obj.target == target else None


def fixed_of(target: str) -> dict:
    """The keys a target's branch fixes: its own objective, else MeanFlow's mix with alpha 0."""
    if own_objective(target):
        return {"objective": target}
    return {"ratio_fm.schedule": "constant", "ratio_fm.value": 0.75, **NO_ALPHA}


def alpha_part(target: str) -> Param:
    """The alpha parameter a target's branch searches: its objective's curriculum shape, else a constant."""
    obj = own_objective(target)
    family = OBJECTIVES[obj].alpha.name if obj else "constant"
    ranges = schedule_ranges(family, 0.1, 1.0)  # a constant split fraction in [0.1, 1]: 0 is degenerate
    shape = [p for p, rng in SCHEDULES[family].ranges.items() if rng != VALUE]
    key = shape[0] if shape else "value"
    return Param(f"alpha.{key}", ranges[key])


def knob_parts(target: str) -> list:
    """A target's own settings (its record's ``knobs``) over their ranges."""
    return [Param(key, Float(lo, hi)) for key, (lo, hi) in TARGETS[target].knobs.items()]


def target_parts(target: str) -> list:
    """A target's own knobs, read from its record."""
    rec, parts = TARGETS[target], []
    if rec.uses_alpha:
        parts.append(alpha_part(target))
    if rec.discrete:
        parts.append(Param("discrete_weight", Choice(DISCRETE_WEIGHTS)))
    if rec.teacher:
        parts.append(Param("teacher_decay", Float(0.9, 0.9999)))
    if rec.clamps:
        parts.append(Param("target_clamp", Choice((0.0, 2.0, 4.0, 8.0))))
    return parts + knob_parts(target)


LOSS = [
    Param("adaptive_p", Float(0.0, 1.5)),
    Param("adaptive_eps", Float(1e-4, 1e-1, log=True)),
    Param("loss_reduction", Choice(LOSS_REDUCTIONS)),
]


def plan(target: str) -> list:
    return target_parts(target) + LOSS


register_by_target(
    "target_variants",
    "every registered target with its own knobs (from its record) and the loss weighting",
    plan,
    fixed_of,
)
