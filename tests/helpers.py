"""Test helpers: tiny non-linear networks and batches on the protocol's path."""
from __future__ import annotations

import torch


def randomized_dit(dtype=torch.float64, seed: int = 0, **size):
    """A tiny SmallDiT with every weight perturbed: adaLN-Zero would otherwise make it output 0."""
    from trainer.model import SmallDiT

    torch.manual_seed(seed)
    net = SmallDiT(**({"hidden": 32, "depth": 2, "heads": 2, "patch": 8} | size)).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def batch(n: int = 4, dtype=torch.float64, seed: int = 1, fm_rows: int = 0):
    """(x_t, t, t_next, v) on the protocol's path with x0, x1 Gaussian; the first ``fm_rows`` rows have t_next = t."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 3, 32, 32, generator=g, dtype=dtype)
    x1 = torch.randn(n, 3, 32, 32, generator=g, dtype=dtype)
    a, b = torch.rand(2, n, generator=g, dtype=dtype) * 0.8 + 0.1
    t, t_next = torch.maximum(a, b), torch.minimum(a, b)
    t_next[:fm_rows] = t[:fm_rows]
    tt = t[:, None, None, None]
    return (1 - tt) * x0 + tt * x1, t, t_next, x1 - x0
