"""``target_variants``: which target, with its own knobs, and how the loss is weighted.

Ranges, and why:
- adaptive power p in [0, 1.5]: 0 is plain MSE (what self-consistency targets
  need), MeanFlow found 0.5-1 best; eps in [1e-4, 1e-1] (log) around its 1e-3.
- target clamp in {0 (off), 2, 4, 8}: AlphaFlow clamps at 4; targets of a
  unit-variance path rarely exceed 4 unless the JVP term blows up.
- split fraction (splitmeanflow's alpha) in [0.1, 0.9]: 0 and 1 make one of the
  two sub-intervals empty and the target degenerate to u itself.
- teacher_decay in [0.9, 0.999]: an EMA horizon of 10 to 1,000 steps, within a
  10,000-step run.
"""

from search_spaces.base import baseline_point, register
from trainer.objectives import DISCRETE_WEIGHTS, TARGETS

CURRICULUM = {"alpha.schedule": "sigmoid", "alpha.start": 1.0, "alpha.end": 0.0, "alpha.eta": 0.005}
NO_ALPHA = {"alpha.schedule": "constant", "alpha.value": 0.0}


def suggest_target(trial) -> dict:
    """Suggests a target and its own parameters; returns the keys that go with it."""
    target = trial.suggest_categorical("target", list(TARGETS))
    if target in ("alphaflow", "ema_teacher"):
        trial.suggest_float("alpha.gamma", 5.0, 50.0, log=True)
        trial.suggest_categorical("discrete_weight", list(DISCRETE_WEIGHTS))
        if target == "ema_teacher":
            trial.suggest_float("teacher_decay", 0.9, 0.999)
        return dict(CURRICULUM)
    if target == "splitmeanflow":
        trial.suggest_float("alpha.value", 0.1, 0.9)
        return {"alpha.schedule": "constant"}
    return dict(NO_ALPHA)


def suggest_loss(trial) -> None:
    trial.suggest_float("adaptive_p", 0.0, 1.5)
    trial.suggest_float("adaptive_eps", 1e-4, 1e-1, log=True)
    trial.suggest_categorical("target_clamp", [0.0, 2.0, 4.0, 8.0])


_LOSS = {"adaptive_p": 1.0, "adaptive_eps": 1e-3, "target_clamp": 0.0}


@register(
    "target_variants",
    "every registered target with its own knobs and the loss weighting (ratio_fm 0.75)",
    {
        "meanflow": {"target": "meanflow", **_LOSS},
        "alphaflow": {
            "target": "alphaflow",
            **baseline_point("alphaflow", ["alpha.gamma"]),
            "discrete_weight": "inv_alpha",
            **_LOSS,
        },
    },
)
def define(trial):
    fixed = suggest_target(trial)
    suggest_loss(trial)
    return {"ratio_fm.schedule": "constant", "ratio_fm.value": 0.75, **fixed}
