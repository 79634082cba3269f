"""torch.compile's caches kept across trials, restarts and nodes.

Two layers, both optional to torch and never able to fail a trial:

- **Per node, on disk.** Inductor's FX graph and AOTAutograd caches and the
  Triton kernels it builds live under ``TORCHINDUCTOR_CACHE_DIR``, by default in
  ``/tmp``, which batch jobs and containers throw away. A trial that compiles
  points it at ``<root>/<hostname>/inductor``: every later trial on that node,
  and every restart, finds the compiled graphs there. One folder per node, as
  nodes may differ in GPU and driver.
- **Handed between nodes.** After a trial, the compiled artifacts it produced
  (``torch.compiler.save_cache_artifacts``, the "mega-cache") are written to
  ``<root>/mega/<key>.bin``, keyed by everything that shapes the graphs (torch
  version, device, model, batch, loss settings); a trial with the same key on a
  node whose own cache is empty loads them first (``load_cache_artifacts``).

The root is the config's ``compile_cache``, else ``$MEANFLOW_COMPILE_CACHE``,
else ``~/.cache/meanflow-sweep/compile``; a sweep sets it to
``<results-dir>/compile-cache`` (on the results folder every node shares).
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

ENV_VAR = "MEANFLOW_COMPILE_CACHE"


def cache_root(arg: str | os.PathLike | None = None) -> Path:
    from trainer.runtime import user_folder

    return user_folder(arg, ENV_VAR, "compile")


def graph_key(cfg, device_name: str) -> str:
    """What decides the compiled graphs of a trial: two trials with one key compile the same code."""
    import torch

    spec = cfg.loss_spec(amp=False)
    parts = (torch.__version__, device_name, cfg.model, cfg.time_scale, cfg.batch_size, cfg.amp, cfg.alpha_rows, spec)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class CompileCache:
    """Points this process's inductor cache at the node's folder and loads a matching mega-cache once."""

    def __init__(self, root: Path, key: str):
        self.root, self.key = root, key
        self.node = root / socket.gethostname()
        self.mega = root / "mega" / f"{key}.bin"
        self.loaded = False
        self.warning = ""
        try:
            (self.node / "inductor").mkdir(parents=True, exist_ok=True)
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(self.node / "inductor")
        except OSError as e:  # an unwritable root: torch keeps its own default
            self.warning = f"compile cache {self.node} is not usable ({e.strerror}); compiling from scratch"
            return
        self.loaded = self._load()

    def _load(self) -> bool:
        if not self.mega.is_file():
            return False
        import logging

        import torch

        quiet = logging.getLogger("torch.compiler._cache")  # it logs a traceback for a damaged file
        level, quiet.level = quiet.level, logging.ERROR
        try:
            loaded = torch.compiler.load_cache_artifacts(self.mega.read_bytes()) is not None
            problem = "" if loaded else "unreadable"
        except Exception as e:  # a damaged or foreign file is a cache miss, never a failed trial
            loaded, problem = False, type(e).__name__
        finally:
            quiet.setLevel(level)
        if problem:
            self.warning = f"compile artifacts {self.mega} not loaded ({problem}); compiling from scratch"
        return loaded

    def save(self) -> None:
        """Writes the artifacts this process compiled, if this key has none usable yet (the first trial of a
        graph, or the first after a damaged file)."""
        if self.mega.is_file() and self.loaded or "not usable" in self.warning:
            return
        import torch

        from trainer.runtime import atomic_write_bytes

        try:
            saved = torch.compiler.save_cache_artifacts()
            if saved is not None:
                self.mega.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(self.mega, saved[0])
        except Exception as e:  # as in _load: the cache is an optimisation
            self.warning = f"compile artifacts not saved to {self.mega} ({type(e).__name__})"
