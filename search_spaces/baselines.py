"""``baselines``: exactly the known baselines, to reproduce the reference table (and MeanFlow's CIFAR recipe)."""

from search_spaces.base import register
from trainer.objectives.named import BASELINES


@register(
    "baselines",
    "the known baselines (pureflow, meanflow, alphaflow, meanflow_cifar): reproduce the reference table",
    {name: {"objective": name} for name in BASELINES},
)
def define(trial):
    trial.suggest_categorical("objective", BASELINES)
    return {}
