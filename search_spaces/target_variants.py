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
- a target's own knobs (``tangent_beta``, TiM's weighting, ...) over the range or names its record gives;
  the row mix its objective moves (DMF's warm-up fraction; TiM's flow share in [0.25, 0.75] and its share
  of rows jumping to 0 in [0, 0.5] around its 0.5 and 0.2).
- the interval weight (arXiv 2511.19065): off, a constant strength, or a power curriculum (start, end and
  k in [0.25, 4]): the curriculum's shape.
- teacher_decay in [0.9, 0.9999]: an EMA horizon of 10 to 10,000 steps.
"""

from search_spaces.base import Choice, Float, Param, Sched, register_by_target, schedule_ranges
from trainer.objectives import DISCRETE_WEIGHTS, LOSS_REDUCTIONS, OBJECTIVES, TARGETS
from trainer.objectives.schedules import SCHEDULES, VALUE
from trainer.objectives.targets import is_choice

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
    """A target's own settings (its record's ``knobs``) over their ranges or names."""
    return [Param(key, Choice(k) if is_choice(k) else Float(*k)) for key, k in TARGETS[target].knobs.items()]


def ratio_parts(target: str) -> list:
    """The row mix a target's own objective moves: its ratio_fm schedule's shape (DMF's warm-up), and the share
    of rows jumping to 0 with the flow share beside it where the objective sets one (TiM's two ratios)."""
    obj, parts = own_objective(target), []
    if obj is None:
        return parts
    spec, settings = OBJECTIVES[obj].ratio_fm, OBJECTIVES[obj].settings
    shape = [p for p, rng in SCHEDULES[spec.name].ranges.items() if rng != VALUE]
    if shape:  # its own range, widened to hold the objective's value (DMF converts after 10/11 of the run)
        rng = schedule_ranges(spec.name, 0.25, 1.0)[shape[0]]
        own = spec.params.get(shape[0], rng.lo)
        parts.append(Param(f"ratio_fm.{shape[0]}", Float(min(rng.lo, own), max(rng.hi, own), rng.log)))
    if settings.get("ratio_r0"):
        parts += [Param("ratio_fm.value", Float(0.25, 0.75)), Param("ratio_r0", Float(0.0, 0.5))]
    return parts


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
    return parts + knob_parts(target) + ratio_parts(target)


LOSS = [
    Param("adaptive_p", Float(0.0, 1.5)),
    Param("adaptive_eps", Float(1e-4, 1e-1, log=True)),
    Param("loss_reduction", Choice(LOSS_REDUCTIONS)),
    Sched("interval_weight", 0.0, 1.0, only=("constant", "power")),
]


def plan(target: str) -> list:
    return target_parts(target) + LOSS


register_by_target(
    "target_variants",
    "every registered target with its own knobs (from its record) and the loss weighting",
    plan,
    fixed_of,
)
