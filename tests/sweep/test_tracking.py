"""--mlflow against a real local MLflow store: the sweep is a parent run, each trial a child run under it."""

import pandas as pd
import pytest

from sweep.run import main
from tests.helpers import sweep_args


def test_a_sweep_is_one_parent_run_and_every_trial_a_child_run(ray_session, tmp_path):
    mlflow = pytest.importorskip("mlflow")  # an optional extra; make test installs it
    from mlflow.tracking import MlflowClient

    args = sweep_args("baselines", tmp_path, "ml", 20, "--trials", "2", "--mlflow")
    assert main([*args, "--set", "eval_every=10", "--set", "eval_samples=32", "--set", "fid_samples=64"]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'ml' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "meanflow-sweep"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("meanflow.role") == "sweep"]
    assert parent.info.run_name == "ml" and parent.info.status == "FINISHED"
    assert parent.data.params["trials"] == "2" and parent.data.params["base.preset"] == "smoke"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = pd.read_csv(tmp_path / "ml" / "trials.csv").set_index("trial_id")
    assert sorted(r.data.tags["meanflow.trial_id"] for r in children) == sorted(trials.index)
    for run in children:
        row = trials.loc[run.data.tags["meanflow.trial_id"]]
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "completed"
        assert run.data.params["objective"] == row["config.objective"]
        assert run.data.tags["seed"] == str(row["config.seed"]) and run.data.tags["config_hash"] == row["config_hash"]
        assert run.data.metrics["final_fid"] == pytest.approx(row["final_fid"])
        history = client.get_metric_history(run.info.run_id, "intermediate_fid")
        assert [m.step for m in history] == [10]
        assert history[0].value == pytest.approx(row["intermediate_fid_10"])
        names = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert "samples.png" in names, names
    assert mlflow.__version__


def test_mlflow_flags_are_checked_before_anything_starts(tmp_path, capsys):
    args = ["--results-dir", str(tmp_path / "r"), "--mlflow", "not a uri"]
    assert main(args) == 2
    assert "--mlflow 'not a uri' is not a tracking URI" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
