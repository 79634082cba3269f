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

ENV_VAR = "MEANFLOW_FID_CACHE"
INCEPTION_FILE = "inception-2015-12-05.pt"  # clean-fid's torchscript Inception-v3
STATS_FILE = "cifar10_clean_train_32.npz"  # clean-fid's name: dataset, mode, split, resolution


class FidCacheMissing(RuntimeError):
    """A file that scoring needs is not in the cache folder."""


def cache_dir(arg: str | os.PathLike | None = None) -> Path:
    if arg:
        return Path(arg).expanduser().absolute()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().absolute()
    return Path.home() / ".cache" / "meanflow-sweep" / "fid"


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
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare(folder: Path, log=print) -> None:
    """Fetches what is missing into ``folder``; files already there are kept."""
    for name, url in source_urls().items():
        dest = folder / name
        if dest.is_file():
            log(f"have {dest}")
            continue
        log(f"fetching {name} -> {dest}")
        download_atomic(url, dest)
