"""``alpha_schedules``: how alpha moves over training, with ratio_fm fixed at MeanFlow's 0.75."""

from search_spaces.base import baseline_point, register, suggest_schedule

FAMILIES = ["constant", "linear", "cosine", "step", "sigmoid"]
SIGMOID_KEYS = ["alpha.schedule", "alpha.start", "alpha.end", "alpha.gamma", "alpha.k_init", "alpha.k_end", "alpha.eta"]


@register(
    "alpha_schedules",
    "alpha schedule families and their parameters (alphaflow target, ratio_fm 0.75)",
    {
        "meanflow": {"alpha.schedule": "constant", "alpha.value": 0.0},
        "alphaflow": baseline_point("alphaflow", SIGMOID_KEYS),
    },
)
def define(trial):
    suggest_schedule(trial, "alpha", FAMILIES, 0.0, 1.0)
    # alphaflow's target is MeanFlow's wherever alpha is 0, so meanflow lies in this space.
    return {"target": "alphaflow", "ratio_fm.schedule": "constant", "ratio_fm.value": 0.75}
