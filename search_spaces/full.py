"""``full``: a conditional space over targets, both schedules, loss weighting and time sampling.

Time sampling: logit-normal location in [-1.5, 0.5] and scale in [0.6, 2.0]
around MeanFlow's (-0.4, 1.0) (their ablation covers this band).
"""
from search_spaces.base import register, suggest_schedule
from search_spaces.target_variants import suggest_loss
from trainer.objectives import DISCRETE_WEIGHTS, TARGETS

FAMILIES = ["constant", "linear", "cosine", "step", "sigmoid"]
_FIXED_LOSS = {"adaptive_p": 1.0, "adaptive_eps": 1e-3, "time_mean": -0.4, "time_std": 1.0}


@register("full", "targets x ratio_fm schedules x alpha schedules x loss weighting x time sampling", {
    "meanflow": {"target": "meanflow", "ratio_fm.schedule": "constant", "ratio_fm.value": 0.75, **_FIXED_LOSS},
    "pureflow": {"target": "pureflow", **_FIXED_LOSS},
    "alphaflow": {"target": "alphaflow", "ratio_fm.schedule": "constant", "ratio_fm.value": 0.75,
                  "alpha.schedule": "sigmoid", "alpha.start": 1.0, "alpha.end": 0.0, "alpha.gamma": 25.0,
                  "alpha.k_init": 0.0, "alpha.k_end": 1.0, "alpha.eta": 0.005, "discrete_weight": "inv_alpha",
                  **_FIXED_LOSS},
})
def define(trial):
    target = trial.suggest_categorical("target", list(TARGETS))
    fixed = {}
    if target == "pureflow":  # every row is flow matching: schedules would be dead parameters
        fixed = {"ratio_fm.schedule": "constant", "ratio_fm.value": 1.0}
    else:
        suggest_schedule(trial, "ratio_fm", FAMILIES, 0.25, 1.0)
    if target == "alphaflow":
        suggest_schedule(trial, "alpha", FAMILIES, 0.0, 1.0)
        trial.suggest_categorical("discrete_weight", list(DISCRETE_WEIGHTS))
    else:
        fixed.update({"alpha.schedule": "constant", "alpha.value": 0.0})
    suggest_loss(trial)
    trial.suggest_float("time_mean", -1.5, 0.5)
    trial.suggest_float("time_std", 0.6, 2.0)
    return fixed
