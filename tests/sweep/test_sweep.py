"""Real Ray Tune + Optuna sweeps of smoke trials on CPU (Ray started once per test run)."""

import sys

import pandas as pd
import pytest

from sweep.run import main
from tests.helpers import sweep_args

QUICK = ["--preset", "smoke", "--steps", "20", "--quiet"]  # fmt: skip
QUICK += ["--set", "fid_samples=128", "--set", "eval_every=10", "--set", "eval_samples=64"]  # fmt: skip


def test_baselines_sweep_writes_ranked_tables_and_merges(ray_session, tmp_path):
    assert main(["--space", "baselines", "--results-dir", str(tmp_path), "--name", "b1", *QUICK]) == 0
    trials = pd.read_csv(tmp_path / "b1" / "trials.csv")
    baselines = ["alphaflow", "meanflow", "meanflow_cifar", "pureflow"]
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    assert sorted(trials["config.objective"]) == baselines
    assert sorted(trials["baseline"]) == baselines
    for col in (
        "trial_id",
        "space",
        "config.objective",
        "final_fid",
        "best_intermediate_fid",
        "fid_kind",
        "config.steps",
        "wall_seconds",
        "gpu",
        "config.seed",
        "config_hash",
        "protocol_version",
        "versions",
    ):
        assert col in trials and trials[col].notna().all(), col
    assert set(trials["protocol_version"]) == {2}
    assert (trials["gpu_seconds"] > 0).all() and (trials["step_ms"] > 0).all()  # cost: CPU trials count as one device
    assert (trials["gpu_seconds"] - trials["train_gpu_seconds"] - trials["fid_gpu_seconds"]).abs().max() < 1e-9
    assert set(trials["fid_kind"]) == {"standin/synthetic/128/euler10"}
    board = pd.read_csv(tmp_path / "b1" / "leaderboard.csv")
    assert list(board["rank"]) == [1, 2, 3, 4]
    assert board["final_fid"].is_monotonic_increasing
    meanflow = board.loc[board["baseline"] == "meanflow", "final_fid"].item()
    assert (board["delta_vs_meanflow"] - (board["final_fid"] - meanflow)).abs().max() < 1e-12

    # a second sweep into the same folder: the merged board holds both, each (config_hash, seed) once
    assert main(["--space", "baselines", "--results-dir", str(tmp_path), "--name", "b2", "--trials", "3", *QUICK]) == 0
    merged = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(merged) == 4 and not merged.duplicated(["config_hash", "config.seed"]).any()
    assert (
        main(
            [
                "--space",
                "baselines",
                "--results-dir",
                str(tmp_path),
                "--name",
                "b3",
                "--seed",
                "1",
                "--trials",
                "3",
                *QUICK,
            ]
        )
        == 0
    )
    merged = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(merged) == 7 and list(merged["rank"]) == list(range(1, 8))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--space", "nope"], "invalid choice: 'nope' (choose from 'baselines', 'alpha_schedules'"),
        (["--preset", "huge"], "invalid choice: 'huge' (choose from 'auto', 'seed', 'smoke', 'cpu')"),
        (["--trials", "0"], "--trials 0 must be at least 1"),
        (["--resume", "--name", "ghost"], "there is no sweep 'ghost'"),
        (["--set", "ratio_fm.value=2"], "reaches 2"),
        (["--set", "bogus_key=1"], "unknown config key 'bogus_key'"),
        (["--seeds", "0"], "--seeds 0 must be at least 1"),
        (["--seeds", "2", "--scheduler", "asha"], "--seeds > 1 cannot go with --scheduler asha"),
        (
            ["--preset", "smoke", "--metric", "final_fid_nfe1"],
            "--metric 'final_fid_nfe1' is not measured; choose one of: final_fid",
        ),
        (["--confirm-top", "2", "--confirm-seeds", "1"], "--confirm-seeds 1 must be at least 2"),
        (["--objectives", "cost"], "invalid choice: 'cost'"),
    ],
)
def test_bad_input_exits_2_with_one_sentence_and_writes_nothing(tmp_path, capsys, args, message):
    results = tmp_path / "r"
    with pytest.raises(SystemExit) as exc:
        sys.exit(main([*args, "--results-dir", str(results)]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not results.exists()


def test_unwritable_results_dir(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["--results-dir", str(blocker / "results")]) == 2
    assert f"--results-dir {blocker / 'results'} is not writable" in capsys.readouterr().err


def test_list_spaces(capsys):
    assert main(["--list-spaces"]) == 0
    out = capsys.readouterr().out
    for name in ("baselines", "alpha_schedules", "ratio_fm_schedules", "target_variants", "full"):
        assert name in out


@pytest.mark.parametrize("gpu, preset", [(True, "seed"), (False, "cpu")])
def test_preset_auto_is_the_protocol_on_a_gpu_and_the_cpu_preset_without_one(monkeypatch, capsys, gpu, preset):
    import torch

    from sweep.run import pick_preset

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert pick_preset("auto") == preset and f"using '{preset}'" in capsys.readouterr().out
    assert pick_preset("smoke") == "smoke"


def test_a_diverging_trial_is_recorded_not_ranked_and_failed_in_optuna(ray_session, tmp_path, capsys):
    import optuna

    args = sweep_args("baselines", tmp_path, "d", 30, "--trials", "1", lr="1e30", eval_every=0)
    assert main(args) == 1  # every trial failed
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and "Configuration for experiment" not in out.out  # --quiet
    trials = pd.read_csv(tmp_path / "d" / "trials.csv")
    assert list(trials["status"]) == ["diverged"]
    assert 0 < trials["diverged_step"].item() < 30 and "loss became" in trials["error"].item()
    assert pd.read_csv(tmp_path / "d" / "leaderboard.csv").empty
    study = optuna.load_study(study_name="d", storage=f"sqlite:///{tmp_path / 'd' / 'optuna.db'}")
    ran = [t.state for t in study.trials if t.state != optuna.trial.TrialState.WAITING]  # WAITING: unused baselines
    assert ran == [optuna.trial.TrialState.FAIL]


def test_seeds_run_every_config_on_each_seed_and_optuna_sees_their_mean(ray_session, tmp_path, capsys):
    import optuna

    args = sweep_args("ratio_fm_schedules", tmp_path, "s", 12, "--trials", "2", "--seeds", "2", fid_samples=64)
    assert main([*args, "--set", "eval_every=0"]) == 0
    out = capsys.readouterr().out
    assert "Configuration for experiment" not in out and "View detailed results" not in out  # --quiet is quiet
    trials = pd.read_csv(tmp_path / "s" / "trials.csv")
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    groups = trials.groupby("config_hash")
    assert groups.ngroups == 2 and all(sorted(g["config.seed"]) == [0, 1] for _, g in groups)
    assert all(g["final_fid"].nunique() == 2 for _, g in groups)  # the seed changes the FID, not the hash
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'optuna.db'}")
    told = sorted(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert told == pytest.approx(sorted(groups["final_fid"].mean()))
    board = pd.read_csv(tmp_path / "s" / "leaderboard.csv")
    one = board[board["config_hash"] == board["config_hash"].iloc[0]]
    assert one["device_hours"].iloc[0] == pytest.approx(one["gpu_seconds"].sum() / 3600)  # a config's seeds together
    assert set(board["device_kind"]) == {"CPU"}  # no GPU held: its hours are CPU-hours


def test_fid_and_cost_study_is_multi_objective_and_the_board_marks_the_front(ray_session, tmp_path):
    import optuna

    args = sweep_args("ratio_fm_schedules", tmp_path, "mo", 10, "--trials", "3", "--objectives", "fid,cost")
    assert main([*args, "--set", "eval_every=0", "--set", "fid_samples=64"]) == 0
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{tmp_path / 'mo' / 'optuna.db'}")
    assert len(study.directions) == 2
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and all(len(t.values) == 2 and t.values[1] > 0 for t in done)
    board = pd.read_csv(tmp_path / "mo" / "leaderboard.csv")
    assert board["pareto"].any() and bool(board.loc[board["final_fid"].idxmin(), "pareto"])


def test_the_stock_optuna_searcher_cannot_take_status_results_so_ours_filters_them():
    """One metric name for every FID report was tried: the stock searcher still fails on two kinds of result."""
    from ray.tune.search.optuna import OptunaSearch

    from sweep.search import FinalOnlyOptunaSearch

    def searcher(cls):
        s = cls(space={"x": __import__("optuna").distributions.FloatDistribution(0, 1)}, metric="fid", mode="min")
        s.suggest("t1")
        return s

    failed = {"status": "diverged", "error": "loss became nan at step 3", "training_iteration": 1}
    stock = searcher(OptunaSearch)
    with pytest.raises(KeyError):
        stock.on_trial_result("t1", failed)  # a trial's own failure carries no FID
    with pytest.raises(KeyError):
        stock.on_trial_complete("unknown", {"fid": 1.0})  # a trial a restored searcher never saw
    ours = searcher(FinalOnlyOptunaSearch)
    ours.on_trial_result("t1", failed)
    ours.on_trial_complete("unknown", {"fid": 1.0})
    ours.on_trial_complete("t1", failed)  # told FAIL, never a fake FID
    (trial,) = ours._ot_study.trials
    assert trial.state.name == "FAIL"


def test_intermediate_fids_reach_optuna_so_a_stopped_trial_is_ranked_by_them():
    """A trial ASHA stops ends PRUNED with its intermediate FIDs at their steps; TPE then ranks it by how far it
    got and what it scored. A failure is still FAIL with no value, and a multi-objective study takes none."""
    import optuna
    from optuna.samplers._tpe.sampler import _get_pruned_trial_score

    from sweep.search import FinalOnlyOptunaSearch

    def searcher(metric="fid", mode="min"):
        s = FinalOnlyOptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric=metric, mode=mode)
        for tid in ("far", "near", "failed"):
            s.suggest(tid)
        return s

    s = searcher()
    for step, fid in ((100, 9.0), (200, 5.0)):
        s.on_trial_result("far", {"intermediate_fid": fid, "step": step, "training_iteration": step // 100})
    s.on_trial_result("near", {"intermediate_fid": 2.0, "step": 100, "training_iteration": 1})
    s.on_trial_result("near", {"intermediate_fid": float("nan"), "step": 150, "training_iteration": 2})  # dropped
    s.on_trial_result("failed", {"status": "diverged", "error": "loss became nan at step 3"})
    s.on_trial_complete("far", {"intermediate_fid": 5.0, "step": 200})  # stopped by ASHA: no final FID
    s.on_trial_complete("near", {"intermediate_fid": 2.0, "step": 100})
    s.on_trial_complete("failed", {"status": "diverged"})
    s.on_trial_result("far", {"intermediate_fid": 1.0, "step": 300})  # replayed after a resume: Optuna closed it
    far, near, failed = s._ot_study.trials
    assert (far.state.name, far.intermediate_values) == ("PRUNED", {100: 9.0, 200: 5.0})
    assert (near.state.name, near.intermediate_values) == ("PRUNED", {100: 2.0})
    assert failed.state.name == "FAIL" and failed.intermediate_values == {} and failed.value is None
    # TPE's order of pruned trials: the one that got further first, whatever the other scored earlier
    assert _get_pruned_trial_score(far, s._ot_study) < _get_pruned_trial_score(near, s._ot_study)
    multi = searcher(metric=["fid", "gpu_seconds"], mode=["min", "min"])
    multi.on_trial_result("far", {"intermediate_fid": 3.0, "step": 100})
    assert multi._ot_study.trials[0].intermediate_values == {}


def test_asha_rungs_survive_a_driver_restart(tmp_path):
    """Stops after a restart equal an uninterrupted ASHA's on the same results; a scheduler that starts empty
    (what a restored Tuner gets from Ray) stops fewer. A damaged line of the rungs file is skipped, not fatal."""
    from types import SimpleNamespace

    from search_spaces import SPACES
    from sweep.folder import SweepFolder
    from sweep.search import make_scheduler
    from trainer.config import TrainConfig

    cfg = TrainConfig(preset="smoke", steps=40, eval_every=10)
    space = SPACES["alpha_schedules"]
    trials = [SimpleNamespace(trial_id=f"t{i}", config={"objective": "splitmeanflow", "i": i}) for i in range(8)]
    fids = [[5.0, 4.0, 3.0], [6.0, 5.5, 5.0], [4.0, 3.0, 2.0], [7.0, 6.5, 6.0]]  # before the restart
    fids += [[9.0, 8.0, 7.0], [4.5, 3.5, 2.5], [5.5, 4.5, 3.5], [8.0, 7.5, 7.0]]  # after: t4 is poor from the start

    def run(scheduler, chosen):
        stopped = []
        for trial in chosen:
            scheduler.on_trial_add(None, trial)
            for step, fid in zip((10, 20, 30), fids[int(trial.trial_id[1:])]):
                if scheduler.on_trial_result(None, trial, {"step": step, "intermediate_fid": fid}) == "STOP":
                    stopped.append(trial.trial_id)
                    break
            scheduler.on_trial_complete(None, trial, {"step": 40})
        return stopped

    whole = run(make_scheduler("asha", cfg, space), trials)
    path = SweepFolder(tmp_path).rungs
    first = run(make_scheduler("asha", cfg, space, path), trials[:4])
    with open(path, "a") as f:
        f.write('{"bracket": 0, "milestone": 10, "tri')  # the driver died mid-write
    resumed = make_scheduler("asha", cfg, space, path, resume=True)
    assert resumed.skipped == 1
    assert first + run(resumed, trials[4:]) == whole and whole  # ASHA stopped some, the same ones
    fresh = first + run(make_scheduler("asha", cfg, space), trials[4:])
    assert len(fresh) < len(whole)  # empty rungs after the restart: fewer stops
    again = make_scheduler("asha", cfg, space, path)  # a new sweep of the same name starts its own file
    assert not path.exists() and again.skipped == 0
