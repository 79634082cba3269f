"""Euler sampling with a mean-velocity model: x_{t_next} = x_t - (t - t_next) * u(x_t, t, t_next)."""

from __future__ import annotations

import torch


@torch.no_grad()
def euler_sample(net, noise: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Integrates from t = 1 (noise) to t = 0 (data) in ``steps`` equal steps. (N, C, H, W) -> same."""
    n = noise.shape[0]
    ts = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    x = noise
    for i in range(steps):
        t, t_next = ts[i].expand(n), ts[i + 1].expand(n)
        x = x - (ts[i] - ts[i + 1]) * net(x, t, t_next).to(x.dtype)
    return x


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 in [0, 255], rounded (the protocol quantises before FID)."""
    return ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


NOISE_BLOCK = 500  # noise is drawn in fixed blocks, so it does not depend on the sampling batch size


def noise_for(seed: int, start: int, n: int, shape=(3, 32, 32)) -> torch.Tensor:
    """Noise of samples [start, start + n) for sample seed ``seed``: the same on every device, run and batch size."""
    first, last = start // NOISE_BLOCK, (start + n - 1) // NOISE_BLOCK
    blocks = [
        torch.randn(NOISE_BLOCK, *shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + b))
        for b in range(first, last + 1)
    ]
    offset = start - first * NOISE_BLOCK
    return torch.cat(blocks)[offset : offset + n]


def sample_images(
    net, n: int, seed: int = 0, steps: int = 10, batch_size: int = 1000, device=None, amp: bool = False
) -> torch.Tensor:
    """n uint8 images (n, 3, H, W) on the CPU from a fixed seed.

    Noise is drawn on the CPU (``noise_for``) so a checkpoint scores the same on
    any device and batch size; ``amp`` runs the network under bf16 autocast (any device).
    """
    device = torch.device(device or next(net.parameters()).device)
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        noise = noise_for(seed, start, m).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            x = euler_sample(net, noise, steps)
        out.append(to_uint8(x).cpu())
    return torch.cat(out)
