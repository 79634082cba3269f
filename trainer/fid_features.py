"""Features for FID: clean-fid's exact resize, run across CPU cores, then a feature net in batches.

clean-fid's "clean" mode resizes every image to 299x299 with PIL bicubic on
float32 channels (``cleanfid.resize.build_resizer("clean")``), one image at a
time in the main process (~2 ms an image). We call that same function, only in
a pool of worker processes over chunks, and stream the resized chunks through
the feature network so 50k resized images (~53 GB as float32) never coexist.
"""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import torch
import torch.nn as nn

_RESIZER = None


def _resize_chunk(chunk: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W, 3) -> float32 (n, 3, 299, 299) with clean-fid's resizer."""
    global _RESIZER
    if _RESIZER is None:
        from cleanfid.resize import build_resizer

        _RESIZER = build_resizer("clean")
    return np.stack([_RESIZER(img).transpose(2, 0, 1) for img in chunk])


class ResizePool:
    """A pool of ``workers`` processes applying clean-fid's resize; 0 workers resizes in-process."""

    def __init__(self, workers: int | None = None):
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        # spawn: the trial process may hold CUDA and many threads, which fork would copy.
        self._pool = mp.get_context("spawn").Pool(self.workers) if self.workers > 0 else None

    def map(self, images: np.ndarray, chunk: int):
        """Yields resized chunks in order. images: uint8 (N, H, W, 3)."""
        chunks = [images[i : i + chunk] for i in range(0, len(images), chunk)]
        if self._pool is None:
            yield from map(_resize_chunk, chunks)
        else:
            yield from self._pool.imap(_resize_chunk, chunks)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def extract_features(
    images: torch.Tensor, model: nn.Module, device, pool: ResizePool | None = None, batch_size: int = 500
) -> np.ndarray:
    """uint8 images (N, 3, H, W) -> features (N, D) as float64, via clean-fid's resize and ``model``.

    ``model`` takes float images in [0, 255] of shape (B, 3, 299, 299), like
    clean-fid's ``InceptionV3W``.
    """
    from cleanfid.fid import get_batch_features

    hwc = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()  # (N, H, W, 3) uint8
    own = pool is None
    pool = pool or ResizePool(0)
    try:
        feats = [get_batch_features(torch.from_numpy(batch), model, device) for batch in pool.map(hwc, batch_size)]
    finally:
        if own:
            pool.close()
    return np.concatenate(feats).astype(np.float64)


class StandinFeatures(nn.Module):
    """A small, seeded, fixed random conv net standing in for Inception-v3 offline.

    Same interface as clean-fid's ``InceptionV3W``: float images in [0, 255],
    (B, 3, 299, 299) -> (B, dim). Scores made with it are labelled ``standin``
    and are only comparable with each other.
    """

    def __init__(self, dim: int = 64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # layer construction draws from the global RNG: leave it as it was
            self._build(dim, g)

    def _build(self, dim: int, g: torch.Generator) -> None:
        self.conv1 = nn.Conv2d(3, 16, 8, stride=8)  # 299 -> 37
        self.conv2 = nn.Conv2d(16, dim, 4, stride=4)  # 37 -> 9
        for m in (self.conv1, self.conv2):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in**0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv1((x - 128) / 128))  # (B, 16, 37, 37)
        h = torch.tanh(self.conv2(h))  # (B, dim, 9, 9)
        return h.mean(dim=(2, 3))  # (B, dim)
