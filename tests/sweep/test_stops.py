"""A driver that ends between a trial's start and Tune's next save loses no config (sweep.handout).

Each test hits that window on purpose: Tune's periodic save is put an hour away (TUNE_GLOBAL_CHECKPOINT_S)
and trials report no checkpoint (which would force a save), so Tune's last save predates the trial that
is running when the driver ends. The sweep then runs the baselines an uninterrupted one would, each
completed once, under the first row it got, told to Optuna once, and the study holds no FAIL.
"""

from __future__ import annotations

import os
import signal
import subprocess

import optuna
import pandas as pd

from sweep.run import main
from tests.helpers import start_driver, stop_when, sweep_args, wait_for

BASELINES = {"pureflow", "meanflow", "alphaflow"}  # the first three points: what --trials 3 runs
WINDOW = {"TUNE_GLOBAL_CHECKPOINT_S": "3600"}  # Tune saves at its start and at a clean stop only


def args(folder, name: str, steps: int = 60) -> list[str]:
    extra = ("--trials", "3", "--max-concurrent", "1")
    return sweep_args("baselines", folder, name, steps, *extra, fid_samples=64, eval_every=0, eval_samples=0)


def second_trial_running(csv):
    """The moment the second trial's row says running (the first completed before it): its hand-out is in
    the study and its row on disk, and Tune's last save holds neither."""

    def ready():
        try:
            frame = pd.read_csv(csv)
        except (OSError, pd.errors.EmptyDataError, KeyError):
            return None
        status = list(frame.get("status", []))
        return status.count("completed") == 1 and status.count("running") == 1 and frame

    return ready


def check_whole(folder, name: str, before: pd.DataFrame, resumed: str) -> None:
    """The lost trial run again by the study's record (``resumed``: the resumed driver's output), not by
    Tune's; every baseline completed once, the lost trial's row among them, the completed one untouched, each
    told once; no FAIL, no RUNNING, one row each on the merged board."""
    rows = pd.read_csv(folder / name / "trials.csv")
    assert len(rows) == 3 and set(rows["status"]) == {"completed"}, rows[["trial_id", "status"]]
    done = before[before["status"] == "completed"]
    assert list(rows.set_index("trial_id").loc[done["trial_id"], "final_fid"]) == list(done["final_fid"])
    lost = before.loc[before["status"] == "running", "trial_id"].item()
    assert f"{lost} (meanflow) runs again as Tune trial" in resumed, resumed  # the window was hit
    assert sorted(rows["config.objective"]) == sorted(BASELINES)
    assert lost in set(rows["trial_id"])  # run again under its own row, not a new one
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / name / 'optuna.db'}")
    states = optuna.trial.TrialState
    told = [t for t in study.trials if t.state != states.WAITING]
    assert [t.state for t in told] == [states.COMPLETE] * 3
    assert sorted(t.params["objective"] for t in told) == sorted(BASELINES)
    by_row = {t.user_attrs["tune_trial.0"]: t.value for t in told}
    assert by_row == dict(zip(rows["trial_id"], rows["final_fid"]))  # each row's FID is what Optuna was told
    assert len(pd.read_csv(folder / "leaderboard.csv")) == 3


def test_a_driver_killed_right_after_a_trial_starts_loses_no_config(ray_session, tmp_path, capsys, monkeypatch):
    """SIGKILL to the driver and its Ray (its process group): nothing of it runs after. With --wandb, the lost
    trial's run continues under its own id and every trial's final FIDs are logged once."""
    for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var))
    monkeypatch.setenv("WANDB_MODE", "offline")
    proc = start_driver([*args(tmp_path, "k"), "--wandb", "proj"], **WINDOW)
    csv = tmp_path / "k" / "trials.csv"
    got = {}

    def ready():
        got["rows"] = wait_for(second_trial_running(csv), 300, "the second trial's start", every=0.1)

    out, _ = stop_when(proc, ready, signal.SIGKILL, group=True)
    assert proc.returncode == -signal.SIGKILL, out
    assert main([*args(tmp_path, "k"), "--resume"]) == 0
    check_whole(tmp_path, "k", got["rows"], capsys.readouterr().out)
    check_wandb(tmp_path / "k", got["rows"])


def check_wandb(folder, before: pd.DataFrame) -> None:
    import json

    from sweep.wandb_tracking import sweep_token
    from tests.wandb_files import runs_of

    saved = json.loads((folder / "sweep.json").read_text())
    token = sweep_token(saved["name"], saved["created"])
    runs = runs_of(folder, timeout=5)
    rows = pd.read_csv(folder / "trials.csv")
    assert {f"{token}-{row}" for row in rows["trial_id"]} | {f"{token}-summary"} == set(runs)
    for row, fid in zip(rows["trial_id"], rows["final_fid"]):
        starts = runs[f"{token}-{row}"]
        finals = [h["final_fid"] for start in starts for h in start["history"] if "final_fid" in h]
        assert finals == [fid] and starts[-1]["exit_code"] == 0  # logged once, by the start that finished it
    lost = before.loc[before["status"] == "running", "trial_id"].item()
    assert runs[f"{token}-{lost}"][-1]["config"]["objective"] == "meanflow"  # its own run id, continued


def test_a_driver_whose_gcs_dies_stops_as_on_sigterm_and_loses_no_config(ray_session, tmp_path, capsys):
    """The GCS of the driver's own Ray killed: the driver stops (exit 143, the trial in flight named) before
    Ray's own 1, and --resume runs what was in flight again."""
    # Ray's driver gives up on its GCS after 10 s, the watch after 5 s (sweep.signals.lost_after_s); a trial
    # of 240 steps (about 15 s of meanflow on this machine's two cores) is still running when the watch acts:
    # a trial that ends after the GCS died would end normally (results reach the driver without the GCS)
    proc = start_driver(args(tmp_path, "g", 240), RAY_gcs_rpc_server_reconnect_timeout_s="10", **WINDOW)
    csv = tmp_path / "g" / "trials.csv"
    got = {}

    def ready():
        got["rows"] = wait_for(second_trial_running(csv), 300, "the second trial's start", every=0.1)

    def gcs_pid() -> int:
        found = subprocess.run(["pgrep", "-g", str(proc.pid), "-f", "gcs_server"], capture_output=True, text=True)
        return int(found.stdout.split()[0])

    try:
        ready()
        os.kill(gcs_pid(), signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lost = got["rows"].loc[got["rows"]["status"] == "running", "trial_id"].item()
    assert proc.returncode == 143, out
    assert "has not answered" in out and f"in flight: {lost} (meanflow)" in out, out
    assert f"not finished: meanflow ({lost}, interrupted)" in out and "not started: baseline alphaflow" in out
    assert main([*args(tmp_path, "g", 240), "--resume"]) == 0
    check_whole(tmp_path, "g", got["rows"], capsys.readouterr().out)
