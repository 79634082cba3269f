"""What to try: named search spaces over objectives, one module per family.

A space is a define-by-run function for Optuna (``define(trial) -> dict``) that
only suggests values and returns the keys it fixes: it does no computation
(Ray Tune's rule for search spaces). Parameter names are the trainer's flat
config keys (``alpha.schedule``, ``alpha.gamma``, ``target`` ...), so each
becomes its own column in the results table. ``points`` are the known
baselines that lie in the space, evaluated first.

    from search_spaces import SPACES
    SPACES["alpha_schedules"].define(trial)
"""

from search_spaces.base import SPACES, SearchSpace, baseline_point
from search_spaces import baselines, alpha_schedules, ratio_fm_schedules, target_variants, full  # noqa: F401  (register)

__all__ = ["SPACES", "SearchSpace", "baseline_point"]
