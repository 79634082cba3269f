"""What real machines do to a sweep: another Ray instance, a stale Ray bootstrap file, stop signals, requeue.

Each driver runs as a subprocess, as a user's or a batch job's would, with a
Ray temp folder of its own (RAY_TMPDIR), so nothing here touches another test's
Ray or the machine's.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import start_driver, stop_when, sweep_args, wait_for


@pytest.fixture
def ray_tmp():
    """A short private Ray temp folder (Ray's socket paths must stay under 107 characters)."""
    folder = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    yield folder
    subprocess.run(["rm", "-rf", folder], check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completed_rows(csv: Path):
    try:
        frame = pd.read_csv(csv)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None
    done = frame[frame["status"] == "completed"]
    return done if len(done) else None


def study_trials(folder: Path, name: str):
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / name / 'optuna.db'}")
    return [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]


def test_a_stale_bootstrap_file_and_a_foreign_ray_instance_change_nothing(tmp_path, ray_tmp):
    # a head that died uncleanly left its address behind: nothing listens there
    (Path(ray_tmp) / "ray").mkdir(parents=True, exist_ok=True)
    (Path(ray_tmp) / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}\n")
    args = sweep_args("baselines", tmp_path, "stale", 10, "--trials", "1", fid_samples=32, eval_every=0)
    proc = start_driver(args, RAY_TMPDIR=ray_tmp)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]

    # a colleague's live instance: no CPU to give, so joining it would fail the preflight at once
    port = free_port()
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    foreign = subprocess.Popen(
        [*ray_cli, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false", "--block"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        bootstrap = Path(ray_tmp) / "ray" / "ray_current_cluster"
        wait_for(lambda: bootstrap.is_file() and str(port) in bootstrap.read_text(), 60, "the foreign head")
        args = sweep_args("baselines", tmp_path, "foreign", 60, "--trials", "2", "--max-concurrent", "1")
        proc = start_driver([*args, "--set", "fid_samples=32", "--set", "eval_every=0"], RAY_TMPDIR=ray_tmp)
        wait_for(lambda: completed_rows(tmp_path / "foreign" / "trials.csv") is not None, 180, "a first trial")
        os.killpg(foreign.pid, signal.SIGTERM)  # the other instance goes away mid-sweep
        foreign.wait(timeout=60)
        out, _ = proc.communicate(timeout=240)
    finally:
        if foreign.poll() is None:
            os.killpg(foreign.pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert len(completed_rows(tmp_path / "foreign" / "trials.csv")) == 2


STOPS = {
    "SIGINT to the process group": (signal.SIGINT, True),
    "SIGTERM to the driver": (signal.SIGTERM, False),
    "SIGTERM to every process (a scheduler's scancel)": (signal.SIGTERM, True),
}


@pytest.mark.parametrize("how", list(STOPS))
def test_a_stop_signal_is_a_clean_stop_and_resume_finishes_every_config_once(tmp_path, ray_tmp, how):
    """Exit 128 + signal with the --resume line; the running trial is interrupted (never FAIL in Optuna) and
    continues from its checkpoint on resume; every config completes and is told to Optuna exactly once."""
    sig, group = STOPS[how]
    args = sweep_args("baselines", tmp_path, "s", 240, "--max-concurrent", "1", "--trials", "2")
    args += ["--set", "fid_samples=64", "--set", "eval_every=50", "--set", "eval_samples=32"]
    proc = start_driver(args, RAY_TMPDIR=ray_tmp, MEANFLOW_STOP_GRACE_S="10")
    csv = tmp_path / "s" / "trials.csv"
    seen = {}

    def ready():
        seen["first"] = wait_for(lambda: completed_rows(csv), 240, "a first completed trial")

        def running():
            frame = pd.read_csv(csv)
            return bool(((frame["status"] == "running") & (frame["step"] >= 50)).any())

        wait_for(running, 120, "a second trial past its first checkpoint")

    out, took = stop_when(proc, ready, sig, group=group)
    first = seen["first"]
    assert proc.returncode == 128 + sig, out[-3000:]
    assert took < 10 + 15, out[-3000:]  # the stop grace, then the summary
    lines = out.strip().splitlines()
    resume = f"continue with python -m sweep.run --resume --name s --results-dir {tmp_path}"
    assert lines[-1].startswith(f"interrupted by {signal.Signals(sig).name}: ") and lines[-1].endswith(resume), out
    stopped = pd.read_csv(csv)
    assert "interrupted" in set(stopped["status"]) and not stopped["status"].isin(["running", "error"]).any()
    states = [t.state.name for t in study_trials(tmp_path, "s")]
    assert "FAIL" not in states and "RUNNING" in states, states  # the interrupted trial is not told anything

    resumed = start_driver([*args, "--resume", "auto"], RAY_TMPDIR=ray_tmp)  # the same command a requeued job runs
    out, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, out[-3000:]
    assert "--resume auto: continuing sweep s" in out
    after = pd.read_csv(csv)
    assert len(after) == 2 and set(after["status"]) == {"completed"}, after[["trial_id", "status"]]
    kept = after.set_index("trial_id").loc[first["trial_id"]]
    assert list(kept["final_fid"]) == list(first["final_fid"])  # finished trials are kept, not rerun
    interrupted = after.set_index("trial_id").loc[stopped.loc[stopped["status"] == "interrupted", "trial_id"]]
    assert (interrupted["restarts"] >= 1).all()  # continued from its checkpoint under its own id
    before = stopped.set_index("trial_id").loc[interrupted.index, "intermediate_fid_50"]
    assert list(interrupted["intermediate_fid_50"]) == list(before)  # its history before the stop is kept
    assert (interrupted["best_intermediate_fid"] <= before).all()
    trials = study_trials(tmp_path, "s")
    assert sorted(t.params["objective"] for t in trials if t.state.name == "COMPLETE") == sorted(
        after["config.objective"]
    )
    assert all(t.state.name == "COMPLETE" for t in trials), [t.state.name for t in trials]


def test_resume_auto_starts_a_missing_sweep_and_continues_an_existing_one(tmp_path, ray_tmp):
    args = [*sweep_args("baselines", tmp_path, "auto", 10, "--trials", "1", fid_samples=32, eval_every=0)]
    for word in ("starting", "continuing"):
        proc = start_driver([*args, "--resume", "auto"], RAY_TMPDIR=ray_tmp)
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0 and f"--resume auto: {word} sweep auto" in out, out[-3000:]
    trials = pd.read_csv(tmp_path / "auto" / "trials.csv")
    assert list(trials["status"]) == ["completed"]  # the second run found nothing left to do


def test_address_auto_names_what_it_found_when_nothing_answers(tmp_path, ray_tmp):
    args = sweep_args("baselines", tmp_path, "a", 10, "--address", "auto")
    proc = start_driver(args, RAY_TMPDIR=ray_tmp)
    out, _ = proc.communicate(timeout=120)
    bootstrap = Path(ray_tmp) / "ray" / "ray_current_cluster"
    assert proc.returncode == 2 and out.strip().splitlines()[-1] == (
        f"error: --address auto: RAY_ADDRESS is unset and {bootstrap} names no Ray head; give HOST:PORT, "
        "or leave --address out to start a Ray of this sweep's own"
    ), out
    port = free_port()
    bootstrap.parent.mkdir(parents=True)
    bootstrap.write_text(f"127.0.0.1:{port}\n")  # a head that died uncleanly
    start = time.time()
    proc = start_driver(args, RAY_TMPDIR=ray_tmp)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and time.time() - start < 60, out
    assert f"error: --address auto (127.0.0.1:{port}): no Ray head answers there" in out
    assert not (tmp_path / "a").exists()


def test_a_confirmation_stops_cleanly_on_sigterm_and_the_same_command_finishes_it(tmp_path, ray_tmp):
    import json

    folder = tmp_path / "c"
    folder.mkdir()
    base = {"preset": "smoke", "steps": 300, "fid_samples": 64, "eval_every": 100, "eval_samples": 0}
    saved = {"name": "c", "space": "ratio_fm_schedules", "preset": "smoke", "base": base, "trials": 1}
    (folder / "sweep.json").write_text(json.dumps(saved))  # a sweep with no trial yet: its baselines are confirmed
    args = ["--name", "c", "--results-dir", str(tmp_path), "--top", "1", "--seeds", "2", "--max-concurrent", "1"]
    args += ["--quiet"]
    proc = start_driver(args, module="sweep.confirm", RAY_TMPDIR=ray_tmp, MEANFLOW_STOP_GRACE_S="10")
    first = lambda: completed_rows(folder / "confirm_trials.csv")  # noqa: E731
    out, _ = stop_when(proc, lambda: wait_for(first, 240, "a first confirmation run"), signal.SIGTERM)
    assert proc.returncode == 143, out[-3000:]
    assert out.strip().splitlines()[-1] == "interrupted: rerun the same command to finish the confirmation of c"
    rows = pd.read_csv(folder / "confirm_trials.csv")
    assert list(rows["status"]) == ["completed", "interrupted"], rows[["trial_id", "status"]]
    again = start_driver(args, module="sweep.confirm", RAY_TMPDIR=ray_tmp)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    summary = pd.read_csv(folder / "confirm.csv")
    assert (summary["n"] == 2).all() and (summary["n_failed"] == 0).all()  # every config on both seeds


def test_a_resumed_asha_sweep_stops_what_an_uninterrupted_one_would(tmp_path, ray_tmp):
    """Ctrl-C mid-sweep, then --resume: ASHA's stops equal those an uninterrupted ASHA makes on the same results,
    replayed in trial order (one trial at a time, seeded: the trials and their FIDs are the same either way).
    Ray restores no scheduler state; without the rungs file the resumed part stops nothing it should."""
    from search_spaces import SPACES
    from sweep.columns import row_params
    from sweep.search import make_scheduler
    from trainer.config import TrainConfig

    steps, every = 40, 10
    args = sweep_args("alpha_schedules", tmp_path, "a", steps, "--max-concurrent", "1", "--trials", "12")
    args += ["--scheduler", "asha", "--seed", "3"]
    args += ["--set", f"eval_every={every}", "--set", "eval_samples=32", "--set", "fid_samples=32"]
    proc = start_driver(args, RAY_TMPDIR=ray_tmp, MEANFLOW_STOP_GRACE_S="10")
    csv = tmp_path / "a" / "trials.csv"

    def ended(n):
        try:
            return bool((pd.read_csv(csv)["status"].isin(["completed", "stopped"])).sum() >= n)
        except (FileNotFoundError, pd.errors.EmptyDataError, KeyError):
            return False

    out, _ = stop_when(proc, lambda: wait_for(lambda: ended(3), 300, "three ended trials"), signal.SIGINT, group=True)
    assert proc.returncode == 130, out[-3000:]
    before = set(pd.read_csv(csv)["trial_id"])
    resumed = start_driver([*args, "--resume"], RAY_TMPDIR=ray_tmp)
    out, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, out[-3000:]
    rows = pd.read_csv(csv).sort_values("started_at")  # one at a time: the order results reached ASHA
    assert len(rows) == 12 and rows["status"].isin(["completed", "stopped"]).all(), rows[["trial_id", "status"]]

    replay = make_scheduler(
        "asha", TrainConfig(preset="smoke", steps=steps, eval_every=every), SPACES["alpha_schedules"]
    )
    expected = set()
    for _, row in rows.iterrows():
        trial = type("T", (), {"trial_id": row["trial_id"], "config": row_params(row.to_dict())})()
        replay.on_trial_add(None, trial)
        for step in range(every, steps, every):
            fid = row.get(f"intermediate_fid_{step}")
            if fid != fid or fid is None:
                break
            if replay.on_trial_result(None, trial, {"step": step, "intermediate_fid": fid}) == "STOP":
                expected.add(row["trial_id"])
                break
    stopped = set(rows.loc[rows["status"] == "stopped", "trial_id"])
    assert stopped == expected, (stopped, expected)
    assert expected - before, "no trial started after the resume was stopped: the check would not bite"
