"""A confirmation on fresh paired seeds: a MeanFlow twin is 'no difference', a barely-training config 'worse'."""

import json

import pandas as pd
import pytest

from sweep.confirm import main

KIND = "standin/synthetic/128/euler10"
BASE = {"preset": "smoke", "seed": 0, "steps": 30, "eval_every": 0, "fid_samples": 128}
MEANFLOW_POINT = {"objective": "alphaflow", "ratio_fm.schedule": "constant", "ratio_fm.value": 0.75}
PLANTED = {
    # alpha 0 leaves no discrete rows, so the discrete weight changes nothing: MeanFlow under another hash
    "twin": {**MEANFLOW_POINT, "alpha.schedule": "constant", "alpha.value": 0.0, "discrete_weight": "inv_alpha"},
    # lr 1e-8 barely moves the weights: clearly worse
    "slow": {**MEANFLOW_POINT, "alpha.schedule": "constant", "alpha.value": 0.0, "lr": 1e-8},
}


@pytest.fixture
def planted_sweep(tmp_path):
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"space": "alpha_schedules", "preset": "smoke", "base": BASE}))
    from trainer.config import from_flat

    rows = [  # as versions before the config. prefix wrote them: bare config keys, read back renamed
        {
            "trial_id": name,
            "status": "completed",
            "seed": 0,
            "final_fid": fid,
            "fid_kind": KIND,
            "config_hash": from_flat({**BASE, **params}).config_hash(),
            "finished_at": "2026-11-28T10:00:00+00:00",
            **params,
        }
        for (name, params), fid in zip(PLANTED.items(), (1.0, 2.0))
    ]
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    return folder


def test_confirmation_finds_the_twin_equal_and_the_slow_config_worse(ray_session, planted_sweep, capsys):
    args = ["--name", "planted", "--results-dir", str(planted_sweep.parent), "--top", "2", "--seeds", "4", "--quiet"]
    assert main(args) == 0
    conf = pd.read_csv(planted_sweep / "confirm.csv").set_index("label")
    assert set(conf.index) == {"meanflow", "alphaflow", "top1", "top2"}  # the space's baselines and the top 2
    assert set(conf["n"]) == {4} and set(conf["n_failed"]) == {0}
    assert conf.loc["meanflow", "verdict"] == "reference"
    twin, slow = conf.loc["top1"], conf.loc["top2"]
    assert twin["verdict"] == "no difference" and twin["delta_mean"] == 0.0
    assert slow["verdict"] == "worse" and slow["delta_ci_low"] > 0 and slow["p_holm"] < 0.05
    assert (conf["ci_low"] <= conf["mean_fid"]).all() and (conf["mean_fid"] <= conf["ci_high"]).all()
    plan = json.loads((planted_sweep / "confirm.json").read_text())
    assert plan["seeds"] == [1, 2, 3, 4]  # fresh: the search used seed 0
    board = pd.read_csv(planted_sweep / "leaderboard.csv")  # the verdicts reach the sweep's board
    assert "confirm_verdict" in board and "claim" in board
    # rerunning resumes: every run has ended, nothing runs again
    assert main(args) == 0
    assert "16 of 16 runs already ended" in capsys.readouterr().out
    assert len(pd.read_csv(planted_sweep / "confirm_trials.csv")) == 16


def test_confirm_usage_errors(tmp_path, capsys):
    assert main(["--name", "ghost", "--results-dir", str(tmp_path)]) == 2
    assert "there is no sweep" in capsys.readouterr().err
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text("{}")
    assert main(["--name", "s", "--results-dir", str(tmp_path), "--seeds", "1"]) == 2
    assert "--seeds 1 must be at least 2" in capsys.readouterr().err
