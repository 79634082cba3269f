"""Faults inside a trial: divergence is caught, checkpoints resume to the same result."""

import pytest
import torch

from trainer import train
from trainer.trial import Diverged, checkpoint_path

BASE = {
    "preset": "smoke",
    "objective": "meanflow",
    "steps": 40,
    "eval_every": 20,
    "eval_samples": 0,
    "fid_samples": 64,
    "checkpoint_every": 20,
}


def test_nan_loss_stops_the_trial_with_its_step():
    with pytest.raises(Diverged) as exc:
        train({**BASE, "lr": 1e30, "eval_every": 0, "checkpoint_every": 0})
    assert 0 < exc.value.step < 25 and "loss became" in str(exc.value)


class Crash(RuntimeError):
    pass


def test_a_restarted_trial_continues_from_its_checkpoint_to_the_same_result(tmp_path):
    whole = train({**BASE, "out_dir": str(tmp_path / "whole")})

    def crash(metrics):
        if metrics["step"] == 20:
            raise Crash("killed after the step-20 checkpoint")

    out = tmp_path / "resumed"
    with pytest.raises(Crash):
        train({**BASE, "out_dir": str(out)}, report=crash)
    assert torch.load(checkpoint_path(out), weights_only=False)["step"] == 20
    resumed = train({**BASE, "out_dir": str(out)})
    assert resumed.loss_curve == whole.loss_curve  # bit for bit: weights, optimiser, EMA and RNG restored
    assert resumed.final_fid == whole.final_fid


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    train({**BASE, "steps": 20, "out_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="belongs to config"):
        train({**BASE, "steps": 20, "seed": 5, "out_dir": str(tmp_path)})


def test_a_restarted_trial_keeps_its_intermediate_fids_and_adds_up_its_costs(tmp_path, monkeypatch):
    """The step-20 FID was reported before the crash: it stays in the result. The first attempt runs on a
    clock that moves 100 s a reading, so its seconds, kept in the checkpoint, dwarf the second attempt's."""
    import trainer.trial as trial

    class Clock:
        now = 0.0

        def perf_counter(self):
            self.now += 100.0
            return self.now

    def crash(metrics):
        raise Crash("killed after the step-20 checkpoint")

    cfg = {**BASE, "eval_samples": 32}
    whole = train({**cfg, "out_dir": str(tmp_path / "whole")})
    out = tmp_path / "resumed"
    real = trial.time
    monkeypatch.setattr(trial, "time", Clock())
    with pytest.raises(Crash):
        train({**cfg, "out_dir": str(out)}, report=crash)
    monkeypatch.setattr(trial, "time", real)
    spent = torch.load(checkpoint_path(out), weights_only=False)["spent"]
    assert spent["train"] >= 100 and spent["eval"] >= 100
    resumed = train({**cfg, "out_dir": str(out)})
    assert [m["step"] for m in resumed.intermediate] == [20]
    assert resumed.best_intermediate_fid == whole.best_intermediate_fid
    assert 0 < resumed.train_seconds - spent["train"] < 100  # the first attempt's total plus the second's
    assert resumed.eval_seconds == spent["eval"]  # no evaluation after step 20
    assert resumed.step_ms == pytest.approx(1000 * resumed.train_seconds / cfg["steps"])
