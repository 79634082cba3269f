"""The launch recipes shipped in sweep/launch: the SLURM script's start logic and the KubeRay RayJob manifest."""

import os
import stat
import subprocess
from pathlib import Path

import yaml

LAUNCH = Path(__file__).resolve().parents[2] / "sweep" / "launch"


def test_slurm_script_starts_a_head_then_workers_then_the_driver(tmp_path):
    log = tmp_path / "srun.log"
    stub = tmp_path / "srun"  # records each srun call instead of reaching a node
    stub.write_text(f'#!/usr/bin/env bash\necho "srun $*" >> {log}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "NODES": "node-a node-b node-c",
        "HEAD_IP": "127.0.0.1",
        "SRUN": str(stub),
        "DRY_RUN": "1",
        "SLURM_GPUS_ON_NODE": "8",
        "SLURM_CPUS_ON_NODE": "64",
    }
    out = subprocess.run(
        ["bash", str(LAUNCH / "slurm.sbatch"), "--space", "full", "--trials", "200"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("+ ")]
    assert "ray start --head --node-ip-address=127.0.0.1 --port=6379 --num-cpus=64 --num-gpus=8" in lines[0]
    assert "-w node-a" in lines[0]
    workers = [ln for ln in lines if "ray start --address=127.0.0.1:6379" in ln]
    assert len(workers) == 2 and "-w node-b" in workers[0] and "-w node-c" in workers[1]
    assert lines[-1] == "+ python -m sweep.run --address 127.0.0.1:6379 --space full --trials 200"
    bad = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch")], env={**env, "NODES": ""}, capture_output=True)
    assert bad.returncode != 0 and b"not inside a SLURM allocation" in bad.stderr


def test_rayjob_manifest_has_what_kuberay_needs():
    job = yaml.safe_load((LAUNCH / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("python -m sweep.run --address auto")
    assert "--results-dir /shared/results" in spec["entrypoint"] and "--storage journal" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    workers = cluster["workerGroupSpecs"][0]
    worker = workers["template"]["spec"]["containers"][0]
    assert head["image"] == worker["image"]
    assert int(worker["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    for pod in (cluster["headGroupSpec"]["template"]["spec"], workers["template"]["spec"]):
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "meanflow-shared"
    assert all(c["volumeMounts"][0]["mountPath"] == "/shared" for c in (head, worker))
