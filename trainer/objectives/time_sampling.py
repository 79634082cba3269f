"""Sampling (t, t_next) pairs for a batch.

A batch has ``round(ratio_fm * N)`` flow-matching rows (t_next = t) first, then
mean-velocity rows (t_next < t). A fixed count (rather than a coin per row)
keeps the mix exact in every batch, as MeanFlow's JAX code and AlphaFlow's
``sample_traj_params`` do (both floor ``N * ratio``; round and floor agree for
the protocol's batch of 128 and every ratio the named objectives use).

Samplers (``TIME_SAMPLERS``, records of a ``single`` draw and a ``pair`` draw):

- ``logit_normal``: sigmoid(N(mean, std)); a pair is two independent draws,
  t the larger and t_next the smaller, the second with its own ``mean_r`` /
  ``std_r`` (MeanFlow, Geng et al. 2025, Sec. 4; py-meanflow ``sample_two_timesteps_t_r_v0``).
- ``uniform``: U(0, 1), a pair likewise.
- ``soflow``: SoFlow's released sampler (train.py 259-264): t from
  (mean, std), clamped to >= 1e-4, and t_next = min(a draw from (mean_r,
  std_r), t - 1e-4): not sorted, so t_next's distribution is its own.
- ``tvm``: TVM's released sampler (``training/loss.py`` 39-64): the interval
  t - t_next from (mean_r, std_r), t_next from (mean, std) truncated so that
  t = t_next + interval <= 1 (by the inverse CDF); flow rows one draw.
- ``dyadic``: Shortcut models' grid (released ``targets_shortcut.py``): the
  rows are split evenly over step sizes d = 2^-k, k = 0 .. L-1 (rows left
  over get d = 1), t uniform on that step's grid {d, 2d, .., 1} and
  t_next = t - d. A single draw is uniform on the finest grid {2^-L, .., 1}.

``ratio_r0`` of the rows with t_next < t, the batch's last, get t_next = 0
(TiM's ``consistency_ratio``, ``transition.py`` 56-58, is the same rows as
a share of the whole batch): the one-step jump from t.

Flow-matching rows (``fm_time``): ``single`` draws their t once (AlphaFlow's
``t_fm = t_next_fm = sample_timestep(...)``); ``max`` takes the larger of a
pair (MeanFlow's code sets r = t after sorting a pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from trainer.registry import Registry

TIME_SAMPLERS = Registry("time sampler")
SOFLOW_GAP = 1e-4  # SoFlow train.py 262: "the minimal gap is set to 1e-4"
FM_TIMES = ("single", "max")


@dataclass(frozen=True)
class TimeSpec:
    """How a batch's times are drawn (the config's time keys, by name)."""

    sampler: str = "logit_normal"
    mean: float = -0.4
    std: float = 1.0
    mean_r: float | None = None  # the second draw's location (None: mean)
    std_r: float | None = None  # the second draw's scale (None: std)
    fm_time: str = "single"
    dyadic_levels: int = 7
    ratio_r0: float = 0.0  # share of the rows with t_next < t that get t_next = 0, the batch's last (TiM)


@dataclass(frozen=True)
class TimeSampler:
    single: Callable  # (n, generator, device, spec) -> t (n,)
    pair: Callable  # (n, generator, device, spec) -> (t, t_next), each (n,), t_next <= t


def _sorted_pair(draw):
    def pair(n, g, device, spec: TimeSpec):
        a = draw(n, g, device, spec.mean, spec.std)
        b = draw(n, g, device, _or(spec.mean_r, spec.mean), _or(spec.std_r, spec.std))
        return torch.maximum(a, b), torch.minimum(a, b)

    return pair


def _logit_normal(n, g, device, mean, std):
    return torch.sigmoid(torch.randn(n, generator=g, device=device) * std + mean)


def _uniform(n, g, device, mean=None, std=None):
    return torch.rand(n, generator=g, device=device)


def _dyadic_single(n, g, device, spec: TimeSpec):
    cells = 2**spec.dyadic_levels
    return (torch.randint(0, cells, (n,), generator=g, device=device) + 1).float() / cells


def _dyadic_pair(n, g, device, spec: TimeSpec):
    levels = spec.dyadic_levels
    per = n // levels
    # finest step first, as the released code lays them out; the rest get d = 1
    k = torch.cat(
        [torch.arange(levels - 1, -1, -1).repeat_interleave(per), torch.zeros(n - per * levels, dtype=torch.long)]
    )
    cells = (2**k).to(device)  # (n,) steps per unit
    j = (torch.rand(n, generator=g, device=device) * cells).floor()  # uniform in {0 .. cells - 1}
    t = (j + 1) / cells
    return t, t - 1.0 / cells


def _soflow_pair(n, g, device, spec: TimeSpec):
    # SoFlow train.py 259-264: r from the second distribution, t from the first, t >= 1e-4, r <= t - 1e-4
    r = _logit_normal(n, g, device, _or(spec.mean_r, spec.mean), _or(spec.std_r, spec.std))
    t = _logit_normal(n, g, device, spec.mean, spec.std).clamp_min(SOFLOW_GAP)
    return t, torch.minimum(r, t - SOFLOW_GAP)


def _or(value, default):
    return default if value is None else value


TIME_SAMPLERS.register("logit_normal")(
    TimeSampler(lambda n, g, d, s: _logit_normal(n, g, d, s.mean, s.std), _sorted_pair(_logit_normal))
)
TIME_SAMPLERS.register("uniform")(TimeSampler(lambda n, g, d, s: _uniform(n, g, d), _sorted_pair(_uniform)))
TIME_SAMPLERS.register("dyadic")(TimeSampler(_dyadic_single, _dyadic_pair))


def _tvm_pair(n, g, device, spec: TimeSpec):
    # TVM training/loss.py 42-58: the gap from (mean_r, std_r); r from (mean, std) truncated to r <= 1 - gap
    gap = _logit_normal(n, g, device, _or(spec.mean_r, spec.mean), _or(spec.std_r, spec.std))
    normal = torch.distributions.Normal(torch.tensor(spec.mean, device=device), torch.tensor(spec.std, device=device))
    top = normal.cdf(torch.logit(1 - gap))  # (n,) the truncation's share of the normal
    r = torch.sigmoid(normal.icdf(torch.rand(n, generator=g, device=device) * top))
    return (r + gap).clamp(max=1.0), r


TIME_SAMPLERS.register("tvm")(TimeSampler(lambda n, g, d, s: _logit_normal(n, g, d, s.mean, s.std), _tvm_pair))
TIME_SAMPLERS.register("soflow")(TimeSampler(lambda n, g, d, s: _logit_normal(n, g, d, s.mean, s.std), _soflow_pair))


def sample_times(
    n: int, ratio_fm: float, generator: torch.Generator, device, spec: TimeSpec, interval_scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, t_next), each (N,), with t_next <= t and exactly round(ratio_fm * N) rows with t_next == t, first.

    ``interval_scale`` in (0, 1] shrinks every interval, t_next = t - scale (t - t_next):
    the interval curriculum moves it from short intervals to full ones over training.
    """
    sampler = TIME_SAMPLERS[spec.sampler]
    n_fm = int(round(ratio_fm * n))  # ratio_fm is a host float: no sync
    if spec.fm_time == "max":  # one pair per row; flow-matching rows keep the larger time
        t, t_next = sampler.pair(n, generator, device, spec)
        t_fm = t[:n_fm]
        t, t_next = t[n_fm:], t_next[n_fm:]
    else:
        t_fm = sampler.single(n_fm, generator, device, spec)
        t, t_next = sampler.pair(n - n_fm, generator, device, spec)
    if interval_scale != 1.0:
        t_next = t - interval_scale * (t - t_next)
    n_r0 = int(round(spec.ratio_r0 * (n - n_fm)))  # TiM transition.py 56-58: the last rows get r = 0
    if n_r0:
        t_next = torch.cat([t_next[: n - n_fm - n_r0], torch.zeros_like(t_next[:n_r0])])
    return torch.cat([t_fm, t]), torch.cat([t_fm, t_next])


def interval_lambda(spec: TimeSpec, draws: int = 1 << 16) -> float:
    """lambda = 1 / E[1 - (t - t_next)] over the rows with t_next < t of ``spec``'s sampler (2^16 draws, own seed).

    The interval weight's normaliser (arXiv 2511.19065): at full strength its mean over those rows is 1.
    """
    t, t_next = sample_times(draws, 0.0, torch.Generator().manual_seed(0), "cpu", spec)
    keep = t > t_next
    return float(1.0 / (1.0 - (t - t_next)[keep].double()).mean()) if bool(keep.any()) else 1.0
