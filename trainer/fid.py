"""FID at the research protocol, through clean-fid, offline-capable and parallel.

The protocol's number: clean-fid, mode "clean", 50,000 samples of the EMA model
from the 10-step Euler sampler, quantised to uint8, against clean-fid's
CIFAR-10 *train* statistics at 32x32 (``fid_kind``
``clean-fid/cifar10-train-32/50k/euler10``). An intermediate FID (e.g. 5k
samples) is the same computation on fewer samples, labelled with its count, and
never ranked beside a final one.

Offline, ``fid_mode="standin"`` scores with clean-fid's resize and Frechet
distance but a small seeded feature net and statistics of the synthetic
dataset: a smoke-test score, labelled ``standin/...``.

    python -m trainer.fid prepare --fid-cache DIR   # fetch weights and stats where the network allows
    python -m trainer.fid check --fid-cache DIR     # say whether DIR is complete
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from trainer.cli import Parser, ctrl_c_handled, interrupted, usage_error
from trainer.fid_cache import INCEPTION_FILE, STATS_FILE, FidCacheMissing, cache_dir, check_files, prepare
from trainer.fid_features import ResizePool, StandinFeatures, extract_features
from trainer.sampler import sample_images


@dataclass(frozen=True)
class FidResult:
    fid: float
    fid_kind: str  # what the number is: scorer / reference / sample count / sampler
    num_samples: int
    seed: int
    seconds: float  # wall time, sampling included


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """clean-fid's Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    clean-fid 0.1.35 passes ``disp=False`` to ``scipy.linalg.sqrtm``, deprecated
    in SciPy 1.17 and removed in 1.18: pyproject pins scipy<1.18, and the
    deprecation warning is silenced here only.
    """
    from cleanfid.fid import frechet_distance as cleanfid_frechet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(cleanfid_frechet(mu1, sigma1, mu2, sigma2))


def stats_of(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


@functools.lru_cache(maxsize=4)
def standin_reference(num: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in statistics: StandinFeatures of ``num`` synthetic training images (CPU, cached)."""
    from trainer.data import synthetic_images

    return stats_of(extract_features(synthetic_images(num), StandinFeatures(), "cpu"))


class FidScorer:
    """Scores uint8 images or a model against the reference statistics of ``mode``.

    Args:
        mode: "clean-fid" (Inception-v3 and CIFAR-10 train stats from the cache folder) or "standin".
        device: where the feature network runs.
        cache: the FID cache folder (see ``trainer.fid_cache.cache_dir``).
        workers: resize processes (None: one per CPU core; 0: resize in this process).
    """

    def __init__(self, mode: str = "clean-fid", device="cpu", cache: str | None = None, workers: int | None = None):
        self.mode, self.device = mode, torch.device(device)
        if mode == "clean-fid":
            from cleanfid.inception_torchscript import InceptionV3W

            folder = cache_dir(cache)
            stats = np.load(check_files(folder)[STATS_FILE])  # both files opened and checked: a clear error
            self.ref = (stats["mu"], stats["sigma"])
            self.model = InceptionV3W(str(folder), download=False).to(self.device).eval()
            self.reference = "cifar10-train-32"
        elif mode == "standin":
            self.ref = standin_reference()
            self.model = StandinFeatures().to(self.device)
            self.reference = "synthetic"
        else:
            raise ValueError(f"unknown FID mode {mode!r}; choose clean-fid or standin")
        self.pool = ResizePool(workers)

    def kind(self, n: int, sample_steps: int) -> str:
        count = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        scorer = "clean-fid" if self.mode == "clean-fid" else "standin"
        return f"{scorer}/{self.reference}/{count}/euler{sample_steps}"

    def score_images(self, images: torch.Tensor) -> float:
        """uint8 (N, 3, 32, 32) -> FID against the reference statistics."""
        feats = extract_features(images, self.model, self.device, self.pool)
        return frechet_distance(*stats_of(feats), *self.ref)

    def score_model(
        self, net, n: int, seed: int = 0, sample_steps: int = 10, batch_size: int = 1000, amp: bool = False
    ) -> FidResult:
        start = time.perf_counter()
        images = sample_images(net, n, seed=seed, steps=sample_steps, batch_size=batch_size, amp=amp)
        fid = self.score_images(images)
        return FidResult(fid, self.kind(n, sample_steps), n, seed, time.perf_counter() - start)

    def close(self) -> None:
        self.pool.close()


def main(argv=None) -> int:
    p = Parser(prog="python -m trainer.fid", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["prepare", "check"])
    p.add_argument(
        "--fid-cache", default=None, help="cache folder (default: $MEANFLOW_FID_CACHE or ~/.cache/meanflow-sweep/fid)"
    )
    args = p.parse_args(argv)
    folder = cache_dir(args.fid_cache)
    try:
        with ctrl_c_handled():
            if args.command == "prepare":
                prepare(folder)
            check_files(folder)  # opens both files: a damaged one is not "complete"
    except KeyboardInterrupt:
        return interrupted()
    except FidCacheMissing as e:
        return usage_error(str(e))
    except OSError as e:
        return usage_error(f"could not fetch into {folder} ({e}); copy {INCEPTION_FILE} and {STATS_FILE} there by hand")
    print(f"FID cache {folder} is complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
