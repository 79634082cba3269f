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
    """sigmoid(N(mean, std)): (N,) in (0, 1)."""
    return torch.sigmoid(torch.randn(n, generator=generator, device=device) * std + mean)


@TIME_SAMPLERS.register("uniform")
def uniform(n: int, generator: torch.Generator, device, mean: float = 0.0, std: float = 1.0):
    """U(0, 1): (N,); mean and std are ignored."""
    return torch.rand(n, generator=generator, device=device)


def sample_times(
    n: int,
    ratio_fm: float,
    generator: torch.Generator,
    device,
    sampler: str = "logit_normal",
    mean: float = -0.4,
    std: float = 1.0,
    mean_r: float | None = None,
    std_r: float | None = None,
    interval_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, t_next), each (N,), with t_next <= t and exactly round(ratio_fm * N) rows with t_next == t.

    ``mean_r`` / ``std_r``: the second draw's own location and scale (default:
    the first's), so t and t_next can be shaped separately. ``interval_scale``
    in (0, 1] shrinks every interval, t_next = t - scale (t - t_next): the
    interval curriculum moves it from short intervals to full ones over training.
    """
    draw = TIME_SAMPLERS[sampler]
    a = draw(n, generator, device, mean=mean, std=std)
    b = draw(n, generator, device, mean=mean if mean_r is None else mean_r, std=std if std_r is None else std_r)
    t, t_next = torch.maximum(a, b), torch.minimum(a, b)
    if interval_scale != 1.0:
        t_next = t - interval_scale * (t - t_next)
    n_fm = int(round(ratio_fm * n))  # ratio_fm is a host float: no sync
    if n_fm:
        t_next = torch.cat([t[:n_fm], t_next[n_fm:]])
    return t, t_next
