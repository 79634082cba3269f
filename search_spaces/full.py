"""``full``: a conditional space over targets, both schedules, loss weighting and time sampling.

Time sampling: logit-normal location in [-1.5, 0.5] and scale in [0.6, 2.0]
for t and, separately, for t_next (MeanFlow's ablation covers this band around
its (-0.4, 1.0)); the interval curriculum starts at 5-100% of the interval
lengths (1 is off).
"""

from search_spaces.base import register, suggest_schedule
from search_spaces.target_variants import suggest_loss
from trainer.objectives import DISCRETE_WEIGHTS, TARGETS

FAMILIES = ["constant", "linear", "cosine", "step", "sigmoid"]
_FIXED = {
    "adaptive_p": 1.0,
    "adaptive_eps": 1e-3,
    "target_clamp": 0.0,
    "time_mean": -0.4,
    "time_std": 1.0,
    "time_mean_r": -0.4,
    "time_std_r": 1.0,
    "interval_start": 1.0,
}


@register(
    "full",
    "targets x ratio_fm schedules x alpha schedules x loss weighting x time sampling",
    {
        "meanflow": {"target": "meanflow", "ratio_fm.schedule": "constant", "ratio_fm.value": 0.75, **_FIXED},
        "pureflow": {"target": "pureflow", **_FIXED},
        "alphaflow": {
            "target": "alphaflow",
            "ratio_fm.schedule": "constant",
            "ratio_fm.value": 0.75,
            "alpha.schedule": "sigmoid",
            "alpha.start": 1.0,
            "alpha.end": 0.0,
            "alpha.gamma": 25.0,
            "alpha.k_init": 0.0,
            "alpha.k_end": 1.0,
            "alpha.eta": 0.005,
            "discrete_weight": "inv_alpha",
            **_FIXED,
        },
    },
)
def define(trial):
    target = trial.suggest_categorical("target", list(TARGETS))
    fixed = {}
    if target == "pureflow":  # every row is flow matching: schedules would be dead parameters
        fixed = {"ratio_fm.schedule": "constant", "ratio_fm.value": 1.0}
    else:
        suggest_schedule(trial, "ratio_fm", FAMILIES, 0.25, 1.0)
    if target in ("alphaflow", "ema_teacher"):
        suggest_schedule(trial, "alpha", FAMILIES, 0.0, 1.0)
        trial.suggest_categorical("discrete_weight", list(DISCRETE_WEIGHTS))
        if target == "ema_teacher":
            trial.suggest_float("teacher_decay", 0.9, 0.999)
    elif target == "splitmeanflow":
        suggest_schedule(trial, "alpha", FAMILIES, 0.1, 0.9)  # the split fraction may move over training
    else:
        fixed.update({"alpha.schedule": "constant", "alpha.value": 0.0})
    suggest_loss(trial)
    trial.suggest_float("time_mean", -1.5, 0.5)
    trial.suggest_float("time_std", 0.6, 2.0)
    trial.suggest_float("time_mean_r", -1.5, 0.5)
    trial.suggest_float("time_std_r", 0.6, 2.0)
    trial.suggest_float("interval_start", 0.05, 1.0)
    return fixed
