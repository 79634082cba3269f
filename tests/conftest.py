"""Shared fixtures: tiny non-linear networks, and one Ray instance for the whole run."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ["MEANFLOW_OFFLINE"] = "1"  # tests never download; subprocesses inherit it


def _session_token() -> None:
    """Every Ray of the test run is locked like a user's: a token of the run's own (0600 in a 0700 folder,
    removed at exit), named by RAY_AUTH_TOKEN_PATH, so no test writes into the user's HOME."""
    folder = tempfile.mkdtemp(prefix="meanflow-token-")  # mode 0700
    path = os.path.join(folder, "ray_auth_token")
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(secrets.token_hex(32))
    os.environ.pop("RAY_AUTH_TOKEN", None)
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    os.environ["RAY_AUTH_MODE"] = "token"
    atexit.register(shutil.rmtree, folder, True)


_session_token()


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
