"""A space-filling design over a define-by-run space: ``--sampler sobol`` (ours, for ``sweep.simulate landscape``).

Optuna's ``QMCSampler`` covers only the parameters of its first trial and draws every other one at random, so
on a conditional space (a schedule family, then that family's parameters) most of the design would be random.
Here every parameter name gets a coordinate of one scrambled Sobol sequence (``scipy.stats.qmc.Sobol``) the
first time the study sees it, and Optuna trial n takes point n: each branch's keys are spread over their ranges
as evenly as the sequence's projections allow, and the family key itself over its options.

The name -> coordinate map is kept in the study (a user attribute), so a resumed sweep, a second process or a
rerun with the same seed continues the same design: point n is a function of the seed and n only.
"""

from __future__ import annotations

import math

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

DIMS = 64  # coordinates of the sequence: more than any space's parameter names
DIMS_ATTR = "sobol.dims"  # the study's user attribute: parameter names in the order they took coordinates


class SobolSampler(optuna.samplers.BaseSampler):
    def __init__(self, seed: int = 0):
        self.seed = seed
        self._points: dict[int, list[float]] = {}

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def point(self, n: int) -> list[float]:
        """Point ``n`` of the scrambled sequence (in [0, 1) per coordinate)."""
        if n not in self._points:
            from scipy.stats import qmc

            engine = qmc.Sobol(d=DIMS, scramble=True, seed=self.seed)
            if n:
                engine.fast_forward(n)
            self._points = {n: [float(u) for u in engine.random(1)[0]]}  # one kept: trials ask in order
        return self._points[n]

    def coordinate(self, study, name: str) -> int:
        names = list(study.user_attrs.get(DIMS_ATTR, []))
        if name not in names:
            if len(names) >= DIMS:
                raise ValueError(f"the space has more than {DIMS} parameter names; the Sobol design holds {DIMS}")
            names.append(name)
            study.set_user_attr(DIMS_ATTR, names)
        return names.index(name)

    def sample_independent(self, study, trial, param_name, param_distribution):
        u = self.point(trial.number)[self.coordinate(study, param_name)]
        return value_at(param_distribution, u)


def value_at(dist, u: float):
    """The value at position ``u`` in [0, 1) of a distribution's range (its log scale where it has one)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
    lo, hi = float(dist.low), float(dist.high)
    if dist.log:
        value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    else:
        value = lo + u * (hi - lo)
    step = getattr(dist, "step", None)
    if step:
        value = lo + round((value - lo) / step) * step
    if isinstance(dist, IntDistribution):
        value = int(round(value))
    elif isinstance(dist, FloatDistribution):
        value = float(value)
    return min(max(value, type(value)(lo)), type(value)(hi))
