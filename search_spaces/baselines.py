"""``baselines``: exactly the three known objectives, to reproduce the reference table."""

from search_spaces.base import register
from trainer.objectives.baselines import KNOWN


@register(
    "baselines",
    "the three known objectives (pureflow, meanflow, alphaflow): reproduce the reference table",
    {name: {"objective": name} for name in KNOWN},
)
def define(trial):
    trial.suggest_categorical("objective", KNOWN)
    return {}
