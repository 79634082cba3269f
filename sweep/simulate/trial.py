"""The simulated trial: in place of ``sweep.trainable.trainable``, reporting what it reports, in scaled time.

At each evaluation step it sleeps the segment's GPU-seconds times the model's scale, then reports the
intermediate FID (``step``, ``intermediate_fid``, ``progress``, ``steps_per_s``) as the trainer does; at the
end it reports a ``trainer.result.TrialResult`` row with the final FID, its step and its device costs, as
the real trainable does. Before each report it appends one line to the simulation's log (trial, step,
GPU-seconds so far, measured and true FID, time): what the analysis reads, including for trials that the
scheduler stops.
"""

from __future__ import annotations

import json
import os
import time

from sweep.simulate.model import SimModel
from sweep.trainable import flat_params

FID_KIND = "simulated"  # the FID kind of every simulated result: rankings never mix it with a real one


def log_line(path: str, record: dict) -> None:
    """One JSON line, appended in one write (lines of concurrent trials never interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def final_row(model: SimModel, params: dict, seed: int, spent: dict, fid: float | None = None, step: int = 0) -> dict:
    """The final report: a TrialResult's columns, the last step and the device costs (one simulated GPU); ``fid``
    and ``step`` where a trial ends before the last step (top-k's first rung)."""
    from trainer.result import TrialResult

    if fid is None:
        fid = model.surface.measured(model.searched(params), seed, 1.0)
    train_s, eval_s, fid_s = spent["train"], spent["eval"], spent["fid"]
    result = TrialResult(
        final_fid=fid,
        fid_kind=FID_KIND,
        fid_samples=model.fid_samples,
        best_intermediate_fid=None,
        final_loss=float("nan"),
        final_mse=float("nan"),
        final_fm_mse=float("nan"),
        train_seconds=train_s,
        eval_seconds=eval_s,
        fid_seconds=fid_s,
        wall_seconds=train_s + eval_s + fid_s,
        step_ms=1000 * train_s / model.steps,
        gpu=FID_KIND,
        config_hash="",  # the driver's table has it from the config (a simulated trial builds none)
        protocol_version=0,
        versions="{}",
    )
    row = {k: v for k, v in result.row().items() if k != "config_hash"}
    fid_all = eval_s + fid_s  # intermediate FIDs are FID work (as sweep.trainable.costs counts them)
    costs = {"train_gpu_seconds": train_s, "fid_gpu_seconds": fid_all, "gpu_seconds": train_s + fid_all, "gpus": 1.0}
    return {**row, "step": step or model.steps, **costs}


def sim_trainable(config: dict, model: SimModel, log: str) -> None:
    from ray import tune

    params = {**model.base, **flat_params(config)}
    seed = int(params.get("seed", 0))
    trial_id = tune.get_context().get_trial_id()
    true = model.surface.true_fid(model.searched(params))
    spent = {"train": 0.0, "eval": 0.0, "fid": 0.0}  # GPU-seconds so far
    start, started = model.start, time.monotonic()
    for step in model.eval_steps():
        train, evaluate = model.segment_seconds(params, start, step)
        time.sleep(model.scale * (train + evaluate))
        spent["train"] += train
        spent["eval" if step < model.steps else "fid"] += evaluate
        line = {"trial": trial_id, "step": step, "gpu_s": sum(spent.values()), "true_fid": true, "t": time.time()}
        if step < model.steps:
            ratio = model.fid_samples / model.eval_samples
            fid = model.surface.measured(model.searched(params), seed, step / model.steps, ratio)
            log_line(log, {**line, "fid": fid})
            rate = (step - model.start) / max(time.monotonic() - started, 1e-9)
            if step == model.until:  # a first-rung trial: its FID there is its result
                tune.report(final_row(model, params, seed, spent, fid=fid, step=step))
            else:
                report = {"step": step, "intermediate_fid": fid, "progress": step / model.steps, "steps_per_s": rate}
                tune.report(report)
        else:
            final = final_row(model, params, seed, spent)
            log_line(log, {**line, "fid": final["final_fid"], "final": True})
            tune.report(final)
        start = step
