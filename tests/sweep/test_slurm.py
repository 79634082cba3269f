"""The SLURM recipe under a real scheduler: a one-node SLURM (munged, slurmctld, slurmd) started for this module.

Marked ``slurm``; skipped where the SLURM daemons are not installed (``apt-get install slurm-wlm munge``) or
not run as root. Two jobs share the node, as two users' jobs would (their Ray heads must not collide):

- one sweep meets its time limit (``--time=2``, ``--signal=B:USR1@60``; SLURM checks limits once a minute, so
  the warning comes 60 to 120 s into each allocation): it stops, requeues itself and goes on until every config
  completed;
- another is stopped with ``scancel --batch --signal=TERM`` (exit 143), submitted again (it continues), then
  requeued with ``scontrol requeue`` (it continues again).

Every config completes once, no completed trial runs again, Optuna is told each config once and never FAIL.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "sweep" / "launch" / "slurm.sbatch"
ONE_NODE = Path(__file__).with_name("slurm_one_node.sh")
DAEMONS = ("sbatch", "slurmctld", "slurmd", "munged")


@pytest.fixture(scope="module")
def slurm():
    missing = [d for d in DAEMONS if not shutil.which(d, path=os.environ["PATH"] + ":/usr/sbin:/sbin")]
    if missing or os.geteuid() != 0:
        pytest.skip(f"a one-node SLURM needs root and {', '.join(missing) or 'the daemons'} (slurm-wlm, munge)")
    state = tempfile.mkdtemp(prefix="slurm", dir="/tmp")
    out = subprocess.run([str(ONE_NODE), "start", state], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # Ray's temp folder of the jobs: short, as Ray's socket paths must stay under 107 bytes
    env = {**os.environ, "SLURM_CONF": f"{state}/slurm.conf", "RAY_TMPDIR": f"{state}/r"}
    yield env
    subprocess.run([str(ONE_NODE), "stop", state], capture_output=True, timeout=120)
    shutil.rmtree(state, ignore_errors=True)


def run(env, *cmd) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{cmd}: {out.stderr}"
    return out.stdout


def submit(env, folder: Path, name: str, *options, steps: int = 150) -> str:
    """sbatch of the recipe, as a user would, with the project's Python named by MEANFLOW_PYTHON."""
    args = ["--name", name, "--space", "baselines", "--results-dir", str(folder / "results"), "--preset", "smoke"]
    args += ["--steps", str(steps), "--trials", "3", "--max-concurrent", "1", "--quiet"]
    args += ["--set", "fid_samples=64", "--set", "eval_every=50", "--set", "eval_samples=0"]
    job_env = {**env, "MEANFLOW_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    opts = ["--exclusive=user", f"--output={folder}/{name}-%j.log", *options]  # two jobs share the node
    return run(job_env, "sbatch", "--parsable", *opts, str(SCRIPT), *args).strip().split(";")[0]


def job(env, job_id: str) -> dict:
    text = run(env, "scontrol", "show", "job", "-o", job_id)
    return dict(re.findall(r"(\w+)=(\S+)", text))


def ended(env, job_id: str) -> bool:
    return job(env, job_id)["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")


def completed(folder: Path, name: str) -> int:
    try:
        return int((pd.read_csv(folder / "results" / name / "trials.csv")["status"] == "completed").sum())
    except (FileNotFoundError, pd.errors.EmptyDataError, KeyError):
        return 0


def assert_every_config_once(folder: Path, name: str) -> None:
    import optuna

    trials = pd.read_csv(folder / "results" / name / "trials.csv")
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    assert trials["config.objective"].is_unique
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'results' / name / 'optuna.db'}")
    told = [t for t in study.trials if t.state.name != "WAITING"]
    assert [t.state.name for t in told] == ["COMPLETE"] * 3
    assert sorted(t.params["objective"] for t in told) == sorted(trials["config.objective"])


def test_time_limit_scancel_and_requeue_lose_nothing_and_run_nothing_twice(slurm, tmp_path):
    # more work than one allocation holds (about 3 minutes on two busy cores), so the limit is always met
    limited = submit(slurm, tmp_path, "limit", "--time=2", "--signal=B:USR1@60", steps=250)
    stopped = submit(slurm, tmp_path, "stop")

    wait_for(lambda: completed(tmp_path, "stop") >= 1, 300, "a first trial of the stopped sweep", every=2)
    first = pd.read_csv(tmp_path / "results" / "stop" / "trials.csv").query("status == 'completed'")
    run(slurm, "scancel", "--batch", "--signal=TERM", stopped)  # the user's clean stop: the batch script only
    wait_for(lambda: ended(slurm, stopped), 120, "the stopped job to end", every=2)
    info = job(slurm, stopped)
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "143:0"), info
    log = (tmp_path / f"stop-{stopped}.log").read_text()
    assert "interrupted by SIGTERM" in log and "continue with python -m sweep.run --resume --name stop" in log, log

    again = submit(slurm, tmp_path, "stop")  # the same command, submitted again: it continues
    wait_for(lambda: completed(tmp_path, "stop") >= 2, 300, "a second trial after the resubmission", every=2)
    run(slurm, "scontrol", "requeue", again)
    wait_for(lambda: ended(slurm, again), 400, "the requeued job to finish", every=2)
    info = job(slurm, again)
    assert (info["JobState"], info["ExitCode"], info["Restarts"]) == ("COMPLETED", "0:0", "1"), info
    assert_every_config_once(tmp_path, "stop")
    kept = pd.read_csv(tmp_path / "results" / "stop" / "trials.csv").set_index("trial_id")
    assert list(kept.loc[first["trial_id"], "final_fid"]) == list(first["final_fid"])  # never run again

    wait_for(lambda: ended(slurm, limited), 600, "the time-limited job to finish", every=2)
    info = job(slurm, limited)
    assert info["JobState"] == "COMPLETED" and int(info["Restarts"]) >= 1, info
    log = (tmp_path / f"limit-{limited}.log").read_text()
    assert "time limit near: requeued" in log, log
    assert_every_config_once(tmp_path, "limit")
    for log in tmp_path.glob("*.log"):  # a clean end: no step killed, no Python traceback
        text = log.read_text()
        assert "Killed" not in text and "Traceback" not in text, text
