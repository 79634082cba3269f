"""``--wandb``: the real wandb package offline, its run files read back (tests/wandb_files.py)."""

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from search_spaces import SPACES
from sweep import signals
from sweep.configs import Configs
from sweep.wandb_tracking import WandbTracking, check, mode, sweep_token
from tests.wandb_files import media, runs_of, table

pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def wandb_home(tmp_path, monkeypatch):
    """No key, no server, and wandb's caches in the test's folder (not the user's home)."""
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    for var, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_SILENT", "true")


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True)
    plt.imsave(path, [[0.0, 1.0], [1.0, 0.0]])


def _trial(tmp_path, trial_id, objective, **last):
    path = tmp_path / "ray" / trial_id
    path.mkdir(parents=True)
    return SimpleNamespace(trial_id=trial_id, config={"objective": objective}, path=str(path), last_result=last)


FINALS = {"final_fid": 3.5, "final_fid_nfe1": 9.0, "gpu_seconds": 12.0, "status": "completed", "step": 20}


def test_a_sweep_is_a_group_of_trial_runs_and_a_restored_trial_continues_its_own(tmp_path, monkeypatch):
    sweep = {"name": "wb", "created": "2026-12-06T00:00:00+0000"}
    space, configs = SPACES["baselines"], Configs({"preset": "smoke", "seed": 0, "steps": 20})
    token = sweep_token("wb", sweep["created"])
    assert mode() == "offline"  # no API key: nothing leaves the machine

    # the first driver: t1 completes with its grid; a SIGTERM stops t2 after its first intermediate FID
    first = WandbTracking("proj", tmp_path, sweep, configs, space)
    t1, t2 = _trial(tmp_path, "t1", "meanflow"), _trial(tmp_path, "t2", "alphaflow")
    for trial in (t1, t2):
        first.on_trial_start(0, [], trial)
        first.on_trial_result(0, [], trial, {"intermediate_fid": 7.0, "step": 10})
    _png(Path(t1.path) / "out" / "samples.png")
    t1.last_result = FINALS
    first.on_trial_complete(0, [], t1)
    monkeypatch.setattr(signals, "stopping", lambda: True)
    monkeypatch.setattr(signals, "exit_code", lambda: 143)
    first.on_trial_error(0, [], t2)
    first.on_experiment_end([])
    first.summarize({"leaderboard": pd.DataFrame({"trial_id": ["t1"], "final_fid": [3.5], "claim": [None]})})

    # the second driver (--resume): t2 restored from its checkpoint reports step 10 again, then goes on
    monkeypatch.setattr(signals, "stopping", lambda: False)
    second = WandbTracking("proj", tmp_path, sweep, configs, space)
    second.on_trial_start(0, [], t1)  # already complete: no new run
    second.on_trial_start(0, [], t2)
    second.on_trial_result(0, [], t2, {"intermediate_fid": 7.0, "step": 10})
    second.on_trial_result(0, [], t2, {"intermediate_fid": 6.0, "step": 20})
    t2.last_result = {**FINALS, "final_fid": 4.0}
    second.on_trial_complete(0, [], t2)
    second.on_experiment_end([])
    board = pd.DataFrame({"trial_id": ["t1", "t2"], "final_fid": [3.5, 4.0], "claim": ["", "x"]})
    second.summarize({"leaderboard": board})
    assert not first.warned and not second.warned

    runs = runs_of(tmp_path)
    assert set(runs) == {f"{token}-t1", f"{token}-t2", f"{token}-summary"}
    (one,), two = runs[f"{token}-t1"], runs[f"{token}-t2"]
    assert len(two) == 2  # the same run id started twice: wandb sync appends them into one run
    assert {r["group"] for rs in runs.values() for r in rs} == {"wb"} and one["project"] == "proj"
    assert one["job_type"] == "trial" and one["name"] == "meanflow t1" and "meanflow" in one["tags"]
    assert one["config"]["objective"] == "meanflow" and one["config"]["preset"] == "smoke"
    assert one["config"]["config_hash"] == configs.hash_of({"objective": "meanflow"})
    assert [r["_step"] for r in one["history"]] == [10, 20]
    end = one["history"][-1]
    assert end["final_fid"] == 3.5 and end["final_fid_nfe1"] == 9.0 and end["gpu_seconds"] == 12.0
    assert media(one, end["samples"]).read_bytes()[:4] == b"\x89PNG"
    assert one["summary"]["status"] == "completed" and one["exit_code"] == 0
    assert two[0]["exit_code"] == 143 and two[0]["summary"]["status"] == "interrupted"
    steps = [r["_step"] for start in two for r in start["history"]]
    assert steps == [10, 20]  # step 10 once: the restored trial's repeat is not logged twice
    assert two[1]["history"][-1]["final_fid"] == 4.0 and two[1]["history"][-1]["intermediate_fid"] == 6.0
    summary = runs[f"{token}-summary"]
    assert [s["job_type"] for s in summary] == ["summary", "summary"]
    assert list(table(summary[-1], summary[-1]["history"][-1]["leaderboard"])["trial_id"]) == ["t1", "t2"]
    assert summary[-1]["history"][-1]["_step"] > summary[0]["history"][-1]["_step"]


@pytest.mark.parametrize("project", ["a/b", "a#b", "x" * 129, ""])
def test_a_project_name_wandb_refuses_is_refused_here_first(tmp_path, project):
    import wandb

    problem = check(project, tmp_path)
    assert problem.startswith(f"--wandb {project!r} is not a W&B project name") and "\n" not in problem
    if project:
        with pytest.raises(Exception, match="project name"):  # wandb's own check agrees
            wandb.Settings(project=project)
    assert check("x" * 128, tmp_path) is None and check("my project", tmp_path) is None


def test_a_missing_package_or_an_unwritable_folder_is_one_sentence(tmp_path, monkeypatch):
    import builtins
    import os

    folder = tmp_path / "s"
    (folder / "wandb").mkdir(parents=True)
    (folder / "wandb").chmod(0o500)
    if os.access(folder / "wandb", os.W_OK):  # root writes anyway: a file where the folder goes stands in
        (folder / "wandb").chmod(0o700)
        (folder / "wandb").rmdir()
        (folder / "wandb").write_text("not a folder")
    assert (
        check("p", folder)
        == f"--wandb: {folder / 'wandb'} cannot be written by this user (W&B's offline runs go there)"
    )
    real = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    assert check("p", tmp_path) == "--wandb needs wandb, an optional extra: pip install -e '.[wandb]'"


def test_a_real_sweep_and_its_confirmation_land_offline_in_the_sweep_folder(ray_session, tmp_path, capsys):
    from sweep.confirm import main as confirm_main
    from sweep.run import main as run_main
    from sweep.tables import read_csv
    from tests.helpers import sweep_args

    args = sweep_args("alpha_schedules", tmp_path, "wb", 20, "--trials", "2", "--wandb", "proj", fid_samples=64)
    assert run_main([*args, "--set", "eval_every=10", "--set", "eval_samples=64", "--set", "fid_nfe=1"]) == 0
    folder = tmp_path / "wb"
    assert f"upload with: wandb sync {folder / 'wandb'}" in capsys.readouterr().out
    board = read_csv(folder / "leaderboard.csv")  # trial ids as text (a hex id such as 711e8883 is no number)
    runs = runs_of(folder)
    trials = {i: starts for i, starts in runs.items() if starts[0]["job_type"] == "trial"}
    assert len(trials) == 2
    for starts in trials.values():  # a second start when the grid came after the trial's end
        run = starts[0]
        assert run["group"] == "wb" and run["project"] == "proj" and {s["exit_code"] for s in starts} == {0}
        assert run["config"]["objective"] in ("meanflow", "alphaflow") and run["config"]["steps"] == 20
        by_step = {row["_step"]: (start, row) for start in starts for row in start["history"]}
        assert sorted(by_step) in ([10, 20], [10, 20, 21]) and "intermediate_fid" in by_step[10][1]
        assert {"final_fid", "final_fid_nfe1", "gpu_seconds", "step_ms"} <= set(by_step[20][1])
        start, row = by_step[max(by_step)]
        assert media(start, row["samples"]).is_file()
    (summary,) = [r[0] for r in runs.values() if r[0]["job_type"] == "summary"]
    logged = table(summary, summary["history"][-1]["leaderboard"])
    assert list(logged["trial_id"]) == list(board["trial_id"])

    assert confirm_main(["--name", "wb", "--results-dir", str(tmp_path), "--top", "0", "--seeds", "2", "--quiet",
                         "--wandb", "proj"]) == 0  # fmt: skip
    runs = runs_of(folder)
    confirms = [r[0] for r in runs.values() if r[0]["job_type"] == "confirm"]
    assert len(confirms) == len(pd.read_csv(folder / "confirm_trials.csv")) == 4  # 2 baselines x 2 seeds
    assert {r["config"]["seed"] for r in confirms} == {1, 2} and {r["group"] for r in confirms} == {"wb"}
    summary = runs[summary["id"]]
    assert len(summary) == 2  # the summary run again, now with the confirmation's table
    assert set(table(summary[-1], summary[-1]["history"][-1]["confirmation"])["label"]) >= {"meanflow", "alphaflow"}


def test_a_failing_wandb_is_one_warning_and_logging_stops(tmp_path, monkeypatch, capsys):
    import wandb

    calls = []

    def unreachable(**kwargs):
        calls.append(kwargs["id"])
        raise TimeoutError("no answer from the server in 90 s")

    monkeypatch.setattr(wandb, "init", unreachable)
    logger = WandbTracking("proj", tmp_path, {"name": "wb"}, Configs({"preset": "smoke"}), SPACES["baselines"])
    for i in range(3):
        logger.on_trial_start(0, [], _trial(tmp_path, f"t{i}", "meanflow"))
    logger.summarize({"leaderboard": pd.DataFrame({"trial_id": ["t0"], "final_fid": [1.0]})})
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: W&B trial start failed (TimeoutError: no answer from the server in 90 s); "
        "W&B logging stops here, the sweep goes on"
    ]
    assert len(calls) == 1  # one wait for the server, not one per trial


def test_a_damaged_project_in_sweep_json_is_named(tmp_path):
    import json

    from sweep.tables import DamagedTable, load_sweep_json

    record = {"name": "s", "space": "baselines", "preset": "smoke", "base": {}, "trials": 3, "wandb_project": 5}
    (tmp_path / "sweep.json").write_text(json.dumps(record))
    with pytest.raises(DamagedTable, match="wandb_project=5, which is not a W&B project name or null"):
        load_sweep_json(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({**record, "wandb_project": "p"}))
    assert load_sweep_json(tmp_path)["wandb_project"] == "p"


@pytest.mark.parametrize(
    "ledger",
    [b'{"abc-t1": {"step": 1', b"\x00\xffgarbage", b'["not", "a record"]', b'{"abc-t1": {"step": NaN}}', b""],
    ids=["truncated", "garbage", "a list", "nan step", "empty"],
)
def test_a_damaged_ledger_is_refused_at_resume_before_ray_and_nothing_is_written(tmp_path, capsys, ledger):
    import json

    from sweep.run import main as run_main

    folder = tmp_path / "s"
    (folder / "wandb").mkdir(parents=True)
    record = {"name": "s", "space": "baselines", "preset": "smoke", "base": {"preset": "smoke"}, "trials": 3}
    (folder / "sweep.json").write_text(json.dumps({**record, "wandb_project": "p"}))
    (folder / "trials.csv").write_text("trial_id,status,final_fid,fid_kind,config_hash,seed,finished_at\n")
    (folder / "wandb" / "ledger.json").write_bytes(ledger)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")}
    assert run_main(["--results-dir", str(tmp_path), "--name", "s", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {folder / 'wandb' / 'ledger.json'} is damaged (not a JSON record of runs and steps); move it "
        "away to go on logging (steps already logged may then be logged again)"
    )
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")} == before
