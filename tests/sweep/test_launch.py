"""The launch recipes shipped in sweep/launch: the SLURM script's start logic and the KubeRay RayJob manifest."""

import os
import subprocess
from pathlib import Path

import yaml

LAUNCH = Path(__file__).resolve().parents[2] / "sweep" / "launch"


def run_script(env: dict, *args: str):
    return subprocess.run(
        ["bash", str(LAUNCH / "slurm.sbatch"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_slurm_script_starts_a_head_then_workers_then_the_driver(tmp_path):
    env = {
        **os.environ,
        "NODES": "node-a node-b node-c",
        "HEAD_IP": "10.1.2.3",
        "SRUN": "srun",
        "DRY_RUN": "1",
        "SLURM_CPUS_ON_NODE": "64",  # the batch node's alone
        "SLURM_JOB_CPUS_PER_NODE": "64,32(x2)",  # every node's, in the node list's order
        "SLURM_JOB_ID": "4242",
    }
    out = run_script(env, "--space", "full", "--trials", "200")
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.replace("\ntrap", " trap").splitlines() if ln.startswith("+ ")]
    assert lines[0] == "+ RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$(python3 -m sweep.auth path)"  # a path, not a token
    lines = lines[1:]
    head = "start --head --node-ip-address=10.1.2.3 --port=24242 --include-dashboard=false"
    assert head in lines[0] and "srun --overlap --whole --nodes=1 --ntasks=1 -w node-a" in lines[0]
    assert lines[0].endswith('--resources={"meanflow_job_4242": 1} --num-cpus=64')  # this job's head
    assert '--num-gpus="$g" --block' in lines[0]  # the GPUs SLURM gave the step, counted on the node
    assert "from ray.scripts.scripts import main" in lines[0]  # Ray's CLI of MEANFLOW_PYTHON, not one on PATH
    workers = [ln for ln in lines if "start --address=10.1.2.3:24242" in ln]
    assert len(workers) == 2 and "-w node-b" in workers[0] and "-w node-c" in workers[1]
    assert all(w.endswith("--num-cpus=32") for w in workers)  # each node's own CPUs, not the batch node's
    # a stable name and --resume auto: a requeued job continues its sweep
    driver = "+ python3 -m sweep.run --address 10.1.2.3:24242 --space full --trials 200 --name meanflow-4242"
    assert lines[-1] == driver + " --resume auto"
    named = run_script(env, "--name", "mine", "--resume", "auto").stdout.splitlines()[-1]
    assert named.endswith("--name mine --resume auto") and named.count("--name") == 1

    bad = run_script({**env, "NODES": ""})
    assert bad.returncode != 0 and "not inside a SLURM allocation" in bad.stderr
    loop = run_script({**env, "HEAD_IP": "127.0.0.1"})
    assert loop.returncode == 2 and "is loopback, which other nodes cannot reach; set HEAD_IP" in loop.stderr


def test_slurm_script_names_the_python_that_cannot_import_the_project(tmp_path):
    env = {**os.environ, "NODES": "node-a", "MEANFLOW_PYTHON": "/bin/false"}
    out = run_script(env, "--space", "full")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: /bin/false cannot import the project (sweep, ray): set MEANFLOW_PYTHON to the python of the "
        "environment it is installed in, e.g. MEANFLOW_PYTHON=$PWD/.venv/bin/python"
    ]


def test_rayjob_manifest_has_what_kuberay_needs():
    job = yaml.safe_load((LAUNCH / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("python -m sweep.run --address auto")
    assert "--results-dir /shared/results" in spec["entrypoint"] and "--storage journal" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}  # KubeRay makes the Secret and sets it in every container
    assert tuple(map(int, cluster["rayVersion"].split("."))) >= (2, 52)  # the first Ray with token authentication
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    workers = cluster["workerGroupSpecs"][0]
    worker = workers["template"]["spec"]["containers"][0]
    assert head["image"] == worker["image"]
    assert int(worker["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    for pod in (cluster["headGroupSpec"]["template"]["spec"], workers["template"]["spec"]):
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "meanflow-shared"
    assert all(c["volumeMounts"][0]["mountPath"] == "/shared" for c in (head, worker))
