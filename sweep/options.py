"""The typed settings the library runs with: the CLIs build them from their flags (``sweep.flags``,
``sweep.run``), a notebook or the simulator builds them directly; no library function reads argv."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RayOptions:
    """Which Ray a sweep or a confirmation runs on and how its trials are placed (the flags both CLIs share)."""

    address: str | None = None  # join this Ray ("auto" or HOST:PORT); None: start one of this run's own
    gpus_per_trial: float | None = None  # None: 1 when the Ray has a GPU, else 0
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None  # trials at once; None: as many as the resources allow
    max_failures: int = 3  # restarts of a trial whose worker, actor or node died (its own failures never rerun)
    quiet: bool = False  # no per-trial progress lines


@dataclass(frozen=True)
class SweepOptions:
    """How ``sweep.driver.run_sweep`` runs a sweep (what it searches is the sweep's settings, in sweep.json)."""

    ray: RayOptions = field(default_factory=RayOptions)
    resume: bool = False  # continue the sweep in its folder: its tables, its study and Tune's saved state
    confirm_top: int = 0  # after the search, confirm this many of the best configs (0: no confirmation)
    confirm_seeds: int = 3  # fresh seeds per config of that confirmation
