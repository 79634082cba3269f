"""Where clean-fid's Inception weights and CIFAR-10 statistics live: a folder the user controls.

clean-fid on its own downloads the weights into the temp folder and the
statistics into its site-packages folder, which fails offline and on clusters.
Here both come from one cache folder: ``--fid-cache DIR``, else the
``MEANFLOW_FID_CACHE`` environment variable, else ``~/.cache/meanflow-sweep/fid``.
``python -m trainer.fid prepare`` fills it where the network allows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from trainer.runtime import offline, publish, removed_if_left_empty, user_folder

ENV_VAR = "MEANFLOW_FID_CACHE"
INCEPTION_FILE = "inception-2015-12-05.pt"  # clean-fid's torchscript Inception-v3
STATS_FILE = "cifar10_clean_train_32.npz"  # clean-fid's name: dataset, mode, split, resolution


class FidCacheMissing(RuntimeError):
    """A file that scoring needs is not in the cache folder."""


def cache_dir(arg: str | os.PathLike | None = None) -> Path:
    return user_folder(arg, ENV_VAR, "fid")


def require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FidCacheMissing(
            f"{name} is missing from the FID cache {folder}: run 'python -m trainer.fid prepare "
            f"--fid-cache {folder}' where the network allows, or copy the file there"
        )
    return path


def require_all(folder: Path) -> dict[str, Path]:
    """Both files scoring needs, statistics first; the first missing one raises FidCacheMissing."""
    return {name: require(folder, name) for name in (STATS_FILE, INCEPTION_FILE)}


def check_files(folder: Path) -> dict[str, Path]:
    """Both files present *and* readable: the statistics hold a 2048-vector mu and a 2048x2048 sigma, and the
    Inception file loads as TorchScript. A damaged one raises FidCacheMissing naming it."""
    paths = require_all(folder)
    stats = paths[STATS_FILE]
    try:
        import numpy as np

        with np.load(stats) as npz:
            mu, sigma = npz["mu"], npz["sigma"]
        ok = mu.shape == (2048,) and sigma.shape == (2048, 2048) and np.isfinite(mu).all() and np.isfinite(sigma).all()
    except Exception:  # noqa: BLE001  (garbage, truncated, the wrong keys)
        ok = False
    if not ok:
        raise FidCacheMissing(
            f"{STATS_FILE} in {folder} is not clean-fid's statistics (mu of 2048, sigma of 2048x2048): "
            "it is damaged; delete it and run 'python -m trainer.fid prepare' or copy it again"
        )
    try:
        import torch

        torch.jit.load(str(paths[INCEPTION_FILE]), map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise FidCacheMissing(
            f"{INCEPTION_FILE} in {folder} does not load as TorchScript ({type(e).__name__}): it is damaged; "
            "delete it and run 'python -m trainer.fid prepare' or copy it again"
        ) from None
    return paths


def ensure_cache(folder: Path, log=print) -> dict[str, Path]:
    """The cache checked; where the network is allowed, what is missing is fetched first (prepare)."""
    try:
        return check_files(folder)
    except FidCacheMissing:
        if offline() or all((folder / name).is_file() for name in (STATS_FILE, INCEPTION_FILE)):
            raise  # offline, or present but damaged: never overwritten silently
    prepare(folder, log)
    return check_files(folder)


def source_urls() -> dict[str, str]:
    """clean-fid's own download addresses, read from clean-fid rather than copied here."""
    from cleanfid import downloads_helper

    stats_base = "https://www.cs.cmu.edu/~clean-fid/stats/"
    return {INCEPTION_FILE: downloads_helper.inception_url, STATS_FILE: stats_base + STATS_FILE}


def download_atomic(url: str, dest: Path) -> None:
    """Downloads to a temporary name in the same folder, then renames: never a half file under ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, f)
        publish(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare(folder: Path, log=print) -> None:
    """Fetches what is missing into ``folder``; files already there are kept.

    Refused with MEANFLOW_OFFLINE=1; a folder this call created is removed
    again if nothing could be fetched into it.
    """
    missing = [name for name in (STATS_FILE, INCEPTION_FILE) if not (folder / name).is_file()]
    if missing and offline():
        raise FidCacheMissing(
            f"MEANFLOW_OFFLINE=1 forbids downloads: copy {' and '.join(missing)} into {folder} by hand"
        )
    with removed_if_left_empty(folder):
        _fetch(folder, log)


def _fetch(folder: Path, log) -> None:
    for name, url in source_urls().items():
        dest = folder / name
        if dest.is_file():
            log(f"have {dest}")
            continue
        log(f"fetching {name} -> {dest}")
        download_atomic(url, dest)
