"""A real multi-node Ray cluster on this machine (ray.cluster_utils.Cluster), started once for this module.

The driver runs as a subprocess joined with --address, as a user's would. Marked
``cluster``: the suite runs it once; ``-m "not cluster"`` skips it.
"""

import json
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import start_driver, sweep_args, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # every node on this machine, at the address local Ray uses for itself here: nothing leaves the machine
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def _progressed(csv: Path, step: int):
    try:
        frame = pd.read_csv(csv)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None
    return "step" in frame and bool((pd.to_numeric(frame["step"], errors="coerce") >= step).any())


def test_a_trial_on_a_killed_node_restarts_from_its_checkpoint_and_matches_an_uninterrupted_run(cluster, tmp_path):
    from trainer import train

    args = sweep_args("ratio_fm_schedules", tmp_path, "kill", 200, "--trials", "1", fid_samples=64, eval_every=20)
    proc = start_driver([*args, "--address", cluster.address, "--set", "eval_samples=32"])
    csv = tmp_path / "kill" / "trials.csv"
    try:
        wait_for(lambda: _progressed(csv, 40), 240, "the trial to pass step 40 (two checkpoints)")
        worker = next(n for n in cluster.worker_nodes)
        cluster.remove_node(worker, allow_graceful=False)  # the node dies mid-trial
        cluster.add_node(num_cpus=1)  # a fresh node the trial can restart on
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    row = pd.read_csv(csv).iloc[0]
    assert row["status"] == "completed" and row.get("restarts", 0) >= 1, out[-3000:]
    fids = [row[c] for c in row.index if c.startswith("intermediate_fid_")]  # reported before and after the restart
    assert len(fids) == 9 and row["best_intermediate_fid"] == min(fids)
    result = json.loads(next((tmp_path / "kill" / "ray" / "tune").glob("*/out/result.json")).read_text())
    cfg = {k: v for k, v in result["config"].items() if k not in ("out_dir", "checkpoint_dir")}
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the trial's 1-CPU Ray worker: the same reduction order
    try:
        again = train({**cfg, "checkpoint_every": 0})  # the same config and seed, never interrupted
    finally:
        torch.set_num_threads(threads)
    assert again.final_fid == pytest.approx(row["final_fid"], rel=1e-9, abs=1e-12)


def test_every_node_is_checked_before_the_first_trial(cluster, tmp_path):
    args = sweep_args("baselines", tmp_path, "chk", 10, "--trials", "1", "--data-dir", str(tmp_path / "no-data"))
    proc = start_driver([*args, "--address", cluster.address, "--set", "dataset=cifar10"])
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 2, out
    line = out.strip().splitlines()[-1]
    assert line.startswith("error: node ") and "no-data" in line and "Traceback" not in out
    assert not (tmp_path / "chk").exists()


def test_a_trial_larger_than_every_node_exits_2_at_once(cluster, tmp_path):
    args = sweep_args("baselines", tmp_path, "big", 10, "--trials", "1", "--cpus-per-trial", "4")
    start = time.time()
    proc = start_driver([*args, "--address", cluster.address])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and time.time() - start < 60, out
    assert "asks for 4 CPU / 0 GPU but no node has that much (the largest: 1 CPU / 0 GPU)" in out
    assert not (tmp_path / "big").exists()


def test_fractional_gpus_are_accepted_where_a_node_has_them(monkeypatch):
    import sweep.cluster as cl

    nodes = [{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}}, {"Alive": True, "Resources": {"CPU": 2.0}}]
    monkeypatch.setattr(cl, "alive_nodes", lambda: nodes)
    cl.check_fits(1.0, 0.5)  # two trials share the GPU
    cl.check_fits(8.0, 1.0)
    with pytest.raises(cl.ClusterError, match=r"asks for 1 CPU / 1.5 GPU .*\(the largest: 16 CPU / 1 GPU\)"):
        cl.check_fits(1.0, 1.5)
    assert cl.gpu_wait_note(3, needs_gpu=True) is None
    nodes.pop(0)  # the last GPU node is gone
    assert (
        cl.gpu_wait_note(3, needs_gpu=True)
        == "3 trials wait for a GPU but no alive node has one (the last GPU node is gone)"
    )


def test_an_unreachable_address_exits_2_within_30_seconds(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.time()
    proc = start_driver([*sweep_args("baselines", tmp_path, "x", 10), "--address", f"127.0.0.1:{port}"])
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and time.time() - start < 30, out
    assert f"--address 127.0.0.1:{port}: no Ray head answers there" in out


@pytest.mark.parametrize("token", ["none", "wrong"])
def test_joining_without_the_clusters_token_or_with_a_wrong_one_exits_2_naming_where_it_looked(
    cluster, tmp_path, token
):
    import os
    import subprocess
    import sys

    # a user with no token anywhere (another HOME, no variable), or one whose token is another cluster's
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    env |= {"HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if token == "wrong":
        env["RAY_AUTH_TOKEN"] = "f" * 64
    args = [*sweep_args("baselines", tmp_path, "join", 10, "--trials", "1"), "--address", cluster.address]
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "sweep.run", *args], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and time.time() - start < 60, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    expected = {
        "none": f"error: --address {cluster.address}: the Ray cluster asks for an authentication token and none "
        f"was found (looked in $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, {tmp_path}/home/.ray/auth_token and "
        f"{tmp_path}/home/.cache/meanflow-sweep/secrets/ray_auth_token)",
        "wrong": f"error: --address {cluster.address}: the Ray cluster refused the token from $RAY_AUTH_TOKEN",
    }[token]
    assert lines == [expected], out.stderr
    assert not (tmp_path / "join").exists()
