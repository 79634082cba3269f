"""Training images held on the device as one uint8 tensor.

A batch is a random index gather plus a random horizontal flip, both on the
device: no DataLoader, no per-batch host work, no sync.
"""

from __future__ import annotations

import os

import torch

from trainer.runtime import offline

CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-py"


class DataError(RuntimeError):
    """The dataset is missing or malformed; the message says what to put where."""


def load_cifar10(data_dir: str, download: bool | None = None) -> torch.Tensor:
    """CIFAR-10 train (50,000 images) as uint8 (N, 3, 32, 32), via torchvision.

    Looks in ``data_dir`` first; downloads there where the network allows,
    unless ``MEANFLOW_OFFLINE=1``.
    """
    from torchvision.datasets import CIFAR10

    if download is None:
        download = not offline()
    extract_offline(data_dir)
    try:
        try:
            ds = CIFAR10(data_dir, train=True, download=False)
        except RuntimeError:  # torchvision's "Dataset not found or corrupted"
            if not download:
                raise DataError(_missing(data_dir)) from None
            try:
                ds = CIFAR10(data_dir, train=True, download=True)
            except Exception as e:  # offline: URLError, socket errors, a bad archive
                raise DataError(f"{_missing(data_dir)} (download failed: {type(e).__name__})") from None
    except DataError:
        raise
    except Exception as e:  # present but unreadable: truncated pickles, permissions
        raise DataError(
            f"CIFAR-10 in {os.path.abspath(data_dir)} could not be read ({type(e).__name__}: {e}); "
            f"replace it with torchvision's {CIFAR_ARCHIVE}"
        ) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    check_images(images, f"CIFAR-10 in {data_dir}")
    return images


def extract_offline(data_dir: str) -> None:
    """A folder holding only torchvision's archive is extracted in place (no network: extracting is not fetching)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, extract_archive

    archive = os.path.join(data_dir, CIFAR_ARCHIVE)
    if os.path.isdir(os.path.join(data_dir, CIFAR_FOLDER)) or not os.path.isfile(archive):
        return
    if not check_integrity(archive, CIFAR10.tgz_md5):
        raise DataError(f"{archive} is damaged (its MD5 is not torchvision's): replace it with a fresh copy")
    try:
        extract_archive(archive, data_dir)
    except Exception as e:  # noqa: BLE001  (a full disk, permissions)
        raise DataError(f"could not extract {archive} into {os.path.abspath(data_dir)} ({e})") from None


def _missing(data_dir: str) -> str:
    return (
        f"CIFAR-10 is not in {os.path.abspath(data_dir)}: place torchvision's {CIFAR_ARCHIVE} "
        f"there (or its extracted {CIFAR_FOLDER}/ folder), or pass --data-dir to where it is"
    )


def check_images(images: torch.Tensor, what: str) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (3, 32, 32) or len(images) == 0:
        raise DataError(
            f"{what} has shape {tuple(images.shape)} and dtype {images.dtype}; "
            f"expected uint8 images of shape (N, 3, 32, 32)"
        )


def synthetic_images(n: int = 2048, seed: int = 1234) -> torch.Tensor:
    """Procedural 32x32 images: a coloured gradient background with one soft disc.

    Structured (low-dimensional, smooth) so a tiny model's loss visibly falls
    within a few hundred steps. Returns uint8 (N, 3, 32, 32), same for a seed.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    c0, c1, cd = (torch.rand(n, 3, 1, 1, generator=g) for _ in range(3))
    angle = torch.rand(n, 1, 1, generator=g) * 6.2832
    ramp = (torch.cos(angle) * xx + torch.sin(angle) * yy + 1) / 2  # (N, 32, 32)
    img = c0 + (c1 - c0) * ramp[:, None]  # (N, 3, 32, 32)
    cx, cy = (torch.rand(n, 1, 1, generator=g) * 0.6 + 0.2 for _ in range(2))
    radius = torch.rand(n, 1, 1, generator=g) * 0.15 + 0.1
    disc = torch.sigmoid((radius - ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt()) * 40)  # (N, 32, 32)
    img = img * (1 - disc[:, None]) + cd * disc[:, None]
    return (img * 255).round().clamp(0, 255).to(torch.uint8)


def load_images(dataset: str, data_dir: str) -> torch.Tensor:
    if dataset == "cifar10":
        return load_cifar10(data_dir)
    if dataset == "synthetic":
        return synthetic_images()
    raise DataError(f"unknown dataset {dataset!r}; choose cifar10 or synthetic")


class DeviceImages:
    """uint8 images on the device; ``batch`` returns floats in [-1, 1] with random flips."""

    def __init__(self, images: torch.Tensor, device: torch.device):
        check_images(images, "the dataset")
        self.images = images.to(device)  # (N, 3, 32, 32) uint8: 150 MB for CIFAR-10
        self.device = device

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.images), (n,), generator=generator, device=self.device)
        x = self.images[idx].float().div_(127.5).sub_(1.0)  # (n, 3, 32, 32) in [-1, 1]
        flip = torch.rand(n, generator=generator, device=self.device) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
