"""The Ray Tune function trainable: a thin adapter around ``trainer.train``.

It turns Tune's flat config into the trainer's frozen dataclass, forwards each
intermediate result with ``tune.report`` (with the trial's checkpoint), and
restores from Tune's checkpoint when a trial is resumed or restarted. A
failure that is the trial's own (diverged, oom, bad config, data or cache
missing) is reported as data (``status``, ``error``, ``diverged_step`` in its
last result) and the trial ends; Optuna is told it FAILED (never a fake FID).
Anything else (a dead worker, actor or node) raises, and Tune restarts the
trial from its last checkpoint up to ``--max-failures`` times.

A trial's final result is also written to ``<sweep>/finals/<trial id>.json``
before it is reported: a trial that Tune restores after its end (a driver
killed before it saved that the trial ended) reports it again instead of
training again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from sweep.folder import SweepFolder, TrialFolder


def gpus_held(ctx) -> float:
    """The GPUs this trial's resources hold (a fraction when GPUs are shared)."""
    try:
        return float(ctx.get_trial_resources().required_resources.get("GPU", 0.0))
    except AttributeError:  # no resources known (a plain function call in tests)
        return 0.0


def costs(result, gpus: float) -> dict:
    """Device-seconds of a trial: wall seconds x GPUs held, training and FID apart.

    A CPU-only trial counts as one device, so its cost is its seconds on the
    machine named by the ``gpu`` column: a CPU sweep's costs compare with each
    other, not with a GPU sweep's.
    """
    devices = gpus if gpus > 0 else 1.0
    train = result.train_seconds * devices
    fid = (result.fid_seconds + result.eval_seconds) * devices  # intermediate FIDs are FID work
    return {"train_gpu_seconds": train, "fid_gpu_seconds": fid, "gpu_seconds": train + fid, "gpus": gpus}


def fail(status: str, message: str, **fields) -> None:
    """Ends a trial that failed on its own (diverged, oom, bad config, data or cache missing).

    The status goes into the trial's last result, and the trial returns: Tune
    ends it normally, so it is never retried as an infrastructure failure
    would be (--max-failures), and the searcher tells Optuna it FAILED.
    """
    from ray import tune

    tune.report({"status": status, "error": message.strip().splitlines()[0][:300], **fields})


JOB = "__job__"  # a confirmation run's whole config, nested under one key of Tune's grid
REPLAYS = "__replays__"  # a lost hand-out run again: {"trial_id": its row, "dir": that row's last folder}


def flat_params(config: dict) -> dict:
    """A trial's own flat keys: a nested confirmation job unpacked, the replay marker left out."""
    return {**config.get(JOB, {}), **{k: v for k, v in config.items() if k not in (JOB, REPLAYS)}}


def row_id(trial_id: str, config: dict) -> str:
    """The results row of a Tune trial: its own id, or the id of the trial whose lost config it runs again
    (``sweep.handout``)."""
    return (config.get(REPLAYS) or {}).get("trial_id") or trial_id


def row_of(trial) -> str:
    """``row_id`` of a Tune Trial (the callbacks' view of it)."""
    return row_id(trial.trial_id, trial.config)


def last_checkpoint(folder: str):
    """The newest Tune checkpoint holding a trainer checkpoint in a trial folder, or None."""
    from ray import tune

    from trainer.trial import checkpoint_path

    name = checkpoint_path(folder).name  # the trainer's checkpoint file, in a folder of its own that Tune keeps
    found = sorted(p for p in Path(folder).glob("checkpoint_*") if (p / name).is_file()) if folder else []
    return tune.Checkpoint.from_directory(str(found[-1])) if found else None


def trial_config(config: dict, base: dict, out_dir: Path, checkpoint_dir: Path):
    """The trial's TrainConfig, built once from Tune's flat config (checkpoints at its evaluation steps unless the
    config says otherwise)."""
    import dataclasses

    from trainer.config import from_flat

    flat = {**base, **flat_params(config), "out_dir": str(out_dir), "checkpoint_dir": str(checkpoint_dir)}
    cfg = from_flat(flat)
    return cfg if "checkpoint_every" in flat else dataclasses.replace(cfg, checkpoint_every=cfg.eval_every)


def final_result(result, cfg, gpus: float) -> dict:
    """What a finished trial reports: its record's columns, its final step and its device costs."""
    return {**result.row(), "step": cfg.steps, **costs(result, gpus)}


def saved_final(path: Path, cfg) -> dict | None:
    """The final result a finished run of this trial left, when it is this config's and seed's."""
    try:
        final = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or cut by a crash mid-write (written atomically: only foreign files)
        return None
    ok = isinstance(final, dict) and (final.get("config_hash"), final.get("seed")) == (cfg.config_hash(), cfg.seed)
    return {k: v for k, v in final.items() if k != "seed"} if ok and "final_fid" in final else None


def trainable(config: dict, base: dict, folder: str | None = None) -> None:
    """One trial of the sweep in ``folder`` (None: no final result is kept), ``base`` under ``config``."""
    import torch
    from ray import tune

    from trainer.runtime import atomic_write_json
    from trainer.trial import Diverged, checkpoint_path, train

    ctx = tune.get_context()
    # result.json and samples.png go to the trial folder, which Tune syncs to the
    # sweep's storage; the (large) checkpoint goes to local scratch and reaches
    # storage only through tune.report, so it is not copied twice.
    out_dir = TrialFolder(ctx.get_trial_dir()).out
    scratch = Path(tempfile.gettempdir()) / "meanflow-sweep" / ctx.get_trial_id()
    try:
        cfg = trial_config(config, base, out_dir, scratch)
    except ValueError as e:  # a bad config is the trial's own failure: reported, never retried
        return fail("error", str(e))
    final_path = SweepFolder(folder).final_json(row_id(ctx.get_trial_id(), config)) if folder else None
    done = saved_final(final_path, cfg) if final_path else None
    if done is not None:  # this trial ended before; its driver died before it saved that
        return tune.report(done)
    # a lost hand-out run again continues from the last checkpoint its first run reported
    restored = tune.get_checkpoint() or last_checkpoint((config.get(REPLAYS) or {}).get("dir", ""))
    if restored is not None:  # a resumed trial continues from its last report
        with restored.as_directory() as d:
            dest = checkpoint_path(scratch)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(d) / dest.name, dest)

    def report(metrics: dict) -> None:
        ckpt = checkpoint_path(scratch)
        checkpoint = tune.Checkpoint.from_directory(str(ckpt.parent)) if ckpt.is_file() else None
        tune.report(metrics, checkpoint=checkpoint)

    from trainer.data import DataError
    from trainer.fid_cache import FidCacheMissing

    try:
        result = train(cfg, report=report)
    except Diverged as e:
        return fail("diverged", f"diverged at step {e.step}: {e}", diverged_step=e.step)
    except torch.OutOfMemoryError as e:
        torch.cuda.empty_cache()  # free the device for the next trial on this worker
        return fail("oom", f"oom: {str(e).splitlines()[0][:200]}")
    except (DataError, FidCacheMissing, ValueError) as e:  # data or cache missing on this node, a bad value
        return fail("error", str(e))
    final = final_result(result, cfg, gpus_held(ctx))
    if final_path:
        atomic_write_json(final_path, {**final, "seed": cfg.seed})  # the seed: whose result it is
    tune.report(final)
    shutil.rmtree(scratch, ignore_errors=True)
    release_device_memory()


def release_device_memory() -> None:
    """Actors are reused across trials (reuse_actors): the next trial starts from an empty CUDA cache."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
