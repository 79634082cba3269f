"""``baselines``: exactly the three known objectives, to reproduce the reference table."""
from search_spaces.base import register
from trainer.objectives import OBJECTIVES


@register("baselines", "the three known objectives (pureflow, meanflow, alphaflow): reproduce the reference table",
          {name: {"objective": name} for name in OBJECTIVES})
def define(trial):
    trial.suggest_categorical("objective", list(OBJECTIVES))
    return {}
