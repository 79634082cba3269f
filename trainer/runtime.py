"""Small runtime helpers: device choice, versions, atomic writes, RNG state."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import torch


OFFLINE_ENV = "MEANFLOW_OFFLINE"  # set to 1: never download (clusters, air-gapped machines, tests)


def user_folder(arg: str | os.PathLike | None, env_var: str, default: str) -> Path:
    """``arg``, else ``$env_var``, else ``~/.cache/meanflow-sweep/<default>``: an absolute folder."""
    chosen = arg or os.environ.get(env_var)
    return Path(chosen).expanduser().absolute() if chosen else Path.home() / ".cache" / "meanflow-sweep" / default


def offline() -> bool:
    """Whether MEANFLOW_OFFLINE forbids downloads (of CIFAR-10 and of the FID cache alike)."""
    return os.environ.get(OFFLINE_ENV, "") in ("1", "true", "yes")


@contextlib.contextmanager
def removed_if_left_empty(folder: Path):
    """Runs the block; if it fails and ``folder`` did not exist before and is still empty, removes it again."""
    created = not folder.exists()
    try:
        yield
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but no CUDA GPU is visible; use --device cpu or auto")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def versions() -> dict[str, str]:
    """Versions of what produced a number: python, torch and the packages that may score or drive it."""
    out = {"python": platform.python_version()}
    for pkg in ("meanflow-sweep", "torch", "torchvision", "clean-fid", "numpy", "scipy", "ray", "optuna", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (os.umask sets it process-wide)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Renames a finished temporary file onto ``path`` with the mode a plain open() would have given it
    (mkstemp makes 0600, which other users of a shared results folder could not read)."""
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes to a temporary file beside ``path`` then renames it: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_torch_save(path: str | os.PathLike, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
