"""``alpha_schedules``: how alpha moves over training, on AlphaFlow's objective.

ratio_fm is one of the values AlphaFlow's released experiments use (0.25,
0.5, 0.75); everything else is the ``alphaflow`` objective's. MeanFlow lies in
this space: alphaflow's target is MeanFlow's wherever alpha is 0, and its clamp
touches only discrete rows.
"""

from search_spaces.base import Choice, Param, baseline_point, register, suggest_schedule

SIGMOID_KEYS = ["alpha.schedule", "alpha.start", "alpha.end", "alpha.gamma", "alpha.k_init", "alpha.k_end", "alpha.eta"]
RATIO = Param("ratio_fm.value", Choice((0.25, 0.5, 0.75)))


@register(
    "alpha_schedules",
    "alpha schedule families and their parameters (alphaflow objective, ratio_fm 0.25 / 0.5 / 0.75)",
    {
        "meanflow": {"alpha.schedule": "constant", "alpha.value": 0.0, "ratio_fm.value": 0.75},
        "alphaflow": baseline_point("alphaflow", SIGMOID_KEYS + ["ratio_fm.value"]),
    },
)
def define(trial):
    suggest_schedule(trial, "alpha", 0.0, 1.0)
    RATIO.suggest(trial)
    return {"objective": "alphaflow", "ratio_fm.schedule": "constant"}
