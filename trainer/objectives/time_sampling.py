"""Sampling (t, t_next) pairs for a batch.

``logit_normal``: two independent draws sigmoid(N(mean, std)); t is the larger,
t_next the smaller (MeanFlow, Geng et al. 2025, Sec. 4; their ImageNet setting
is mean -0.4, std 1.0). Then the first ``round(ratio_fm * N)`` rows get
t_next = t: those rows are plain flow matching. A fixed count (rather than a
coin per row) keeps the mix exact in every batch, as the MeanFlow code does.
"""
from __future__ import annotations

import torch

from trainer.registry import Registry

TIME_SAMPLERS = Registry("time sampler")


@TIME_SAMPLERS.register("logit_normal")
def logit_normal(n: int, generator: torch.Generator, device, mean: float = -0.4, std: float = 1.0):
    """Two logit-normal draws per row -> (a, b), each (N,) in (0, 1)."""
    z = torch.randn(2, n, generator=generator, device=device) * std + mean
    return torch.sigmoid(z).unbind(0)


@TIME_SAMPLERS.register("uniform")
def uniform(n: int, generator: torch.Generator, device, mean: float = 0.0, std: float = 1.0):
    """Two uniform draws on (0, 1); mean and std are ignored."""
    return torch.rand(2, n, generator=generator, device=device).unbind(0)


def sample_times(n: int, ratio_fm: float, generator: torch.Generator, device, sampler: str = "logit_normal",
                 mean: float = -0.4, std: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, t_next), each (N,), with t_next <= t and exactly round(ratio_fm * N) rows with t_next == t."""
    a, b = TIME_SAMPLERS[sampler](n, generator, device, mean=mean, std=std)
    t, t_next = torch.maximum(a, b), torch.minimum(a, b)
    n_fm = int(round(ratio_fm * n))  # ratio_fm is a host float: no sync
    if n_fm:
        t_next = torch.cat([t[:n_fm], t_next[n_fm:]])
    return t, t_next
