"""``target_variants``: which target, and how its loss is weighted.

Ranges: adaptive power p in [0, 1.5] (0 is plain MSE, MeanFlow found 0.5-1
best); eps in [1e-4, 1e-1] log around MeanFlow's 1e-3.
"""
from search_spaces.base import baseline_point, register
from trainer.objectives import DISCRETE_WEIGHTS, TARGETS

LOSS_KEYS = ["adaptive_p", "adaptive_eps"]


def suggest_target(trial) -> dict:
    """Suggests a target; returns the schedule keys that go with it."""
    target = trial.suggest_categorical("target", list(TARGETS))
    if target == "alphaflow":
        trial.suggest_float("alpha.gamma", 5.0, 50.0, log=True)
        trial.suggest_categorical("discrete_weight", list(DISCRETE_WEIGHTS))
        return {"alpha.schedule": "sigmoid", "alpha.start": 1.0, "alpha.end": 0.0, "alpha.eta": 0.005}
    return {"alpha.schedule": "constant", "alpha.value": 0.0}


def suggest_loss(trial) -> None:
    trial.suggest_float("adaptive_p", 0.0, 1.5)
    trial.suggest_float("adaptive_eps", 1e-4, 1e-1, log=True)


@register("target_variants", "every registered target with its loss weighting (ratio_fm 0.75)", {
    "meanflow": {"target": "meanflow", "adaptive_p": 1.0, "adaptive_eps": 1e-3},
    "alphaflow": {"target": "alphaflow", **baseline_point("alphaflow", ["alpha.gamma"]),
                  "discrete_weight": "inv_alpha", "adaptive_p": 1.0, "adaptive_eps": 1e-3},
})
def define(trial):
    fixed = suggest_target(trial)
    suggest_loss(trial)
    return {"ratio_fm.schedule": "constant", "ratio_fm.value": 0.75, **fixed}
