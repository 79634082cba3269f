"""Shared fixtures: tiny non-linear networks, and one Ray instance for the whole run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ["MEANFLOW_OFFLINE"] = "1"  # tests never download; subprocesses inherit it


@pytest.fixture(scope="session")
def ray_session():
    """Ray started once per test run (2-4 s a start on this machine)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # "local": a Ray of its own, whatever other instance or stale bootstrap file the machine has
        # sim_gpu: the simulated GPUs of sweep.simulate's tests
        ray.init(
            address="local",
            num_cpus=2,
            resources={"sim_gpu": 4},
            include_dashboard=False,
            log_to_driver=False,
            logging_level="warning",
        )
    yield ray
    ray.shutdown()
