"""``ratio_fm_schedules``: the flow-matching share over training, on MeanFlow's objective (alpha 0)."""

from search_spaces.base import register, suggest_schedule


@register(
    "ratio_fm_schedules",
    "ratio_fm schedule families in [0.25, 1] with the MeanFlow objective (alpha 0)",
    {
        "meanflow": {"ratio_fm.schedule": "constant", "ratio_fm.value": 0.75},
        "pureflow": {"ratio_fm.schedule": "constant", "ratio_fm.value": 1.0},
    },
)
def define(trial):
    suggest_schedule(trial, "ratio_fm", 0.25, 1.0)
    return {"objective": "meanflow"}
