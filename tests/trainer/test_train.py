"""Short CPU runs of the whole trainer."""

import json

import pytest

from trainer import train
from trainer.result import TrialResult

FAST = {"preset": "smoke", "steps": 30, "eval_every": 15, "eval_samples": 64, "fid_samples": 128}


def test_same_seed_gives_identical_losses(tmp_path):
    a = train({**FAST, "objective": "meanflow", "out_dir": str(tmp_path / "a")})
    b = train({**FAST, "objective": "meanflow", "out_dir": str(tmp_path / "b")})
    assert a.loss_curve == b.loss_curve and a.final_fid == b.final_fid
    c = train({**FAST, "objective": "meanflow", "seed": 1})
    assert c.loss_curve != a.loss_curve


def test_result_json_records_what_produced_the_number(tmp_path):
    reports = []
    res = train({**FAST, "objective": "alphaflow", "out_dir": str(tmp_path)}, report=reports.append)
    saved = json.loads((tmp_path / "result.json").read_text())
    for key in ("config", "config_hash", "versions", "final_fid", "fid_kind", "wall_seconds", "loss_curve"):
        assert key in saved
    assert json.loads(saved["versions"])["torch"] and saved["config"]["target"] == "alphaflow"
    assert saved["config"]["seed"] == 0 and TrialResult.from_row(saved) == res  # the file holds the whole record
    assert saved["fid_kind"] == "standin/synthetic/128/euler10"
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["step"] for r in reports] == [15] and "intermediate_fid" in reports[0]
    assert res.best_intermediate_fid == reports[0]["intermediate_fid"]


@pytest.mark.parametrize("objective", ["pureflow", "meanflow", "alphaflow"])
def test_every_baseline_lowers_the_loss(objective):
    res = train(
        {
            "preset": "smoke",
            "objective": objective,
            "steps": 120,
            "eval_every": 0,
            "fid_samples": 64,
            "alpha.k_end": 0.5,
        }
        if objective == "alphaflow"
        else {"preset": "smoke", "objective": objective, "steps": 120, "eval_every": 0, "fid_samples": 64}
    )
    curve = [fm_mse for _, _, _, fm_mse in res.loss_curve]  # rows with a fixed target: v
    first, last = sum(curve[:10]) / 10, sum(curve[-10:]) / 10
    assert last < 0.7 * first, (first, last)
