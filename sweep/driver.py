"""The Tune + Optuna machinery behind ``sweep.run`` (imported only once the arguments are good)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from sweep.progress import RecordsCallback
from sweep.records import FAILED, SweepTable, rank
from sweep.trainable import trainable
from trainer.config import from_flat
from trainer.runtime import atomic_write_json

METRIC = "final_fid"  # what Optuna minimises; ASHA-stopped trials have none and are PRUNED there
EARLY_METRIC = "intermediate_fid"  # what ASHA compares


class FinalOnlyOptunaSearch(OptunaSearch):
    """OptunaSearch told only final results.

    Intermediate reports carry ``intermediate_fid`` (for ASHA), not ``final_fid``;
    the stock searcher indexes every result by its metric and would fail on them,
    and a resumed sweep can replay results of trials Optuna already closed.
    Early stopping is ASHA's job, so Optuna needs no intermediate values: each
    trial's final value arrives through ``on_trial_complete``.
    """

    def on_trial_result(self, trial_id: str, result: dict):
        return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id in self._ot_trials:  # unknown after some restores: nothing to tell
            super().on_trial_complete(trial_id, result, error)


def load_sweep_args(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


def make_searcher(space, folder: Path, name: str, seed: int, max_concurrent: int | None):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The study lives in the sweep folder: `optuna-dashboard sqlite:///<folder>/optuna.db` shows it.
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
    searcher = FinalOnlyOptunaSearch(
        space=space.define,
        metric=METRIC,
        mode="min",
        points_to_evaluate=space.points or None,
        sampler=optuna.samplers.TPESampler(seed=seed),
        storage=storage,
        study_name=name,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent) if max_concurrent else searcher


class BaselineSafeASHA(ASHAScheduler):
    """ASHA that never stops a known baseline: the leaderboard's reference must finish."""

    def __init__(self, space, **kwargs):
        super().__init__(**kwargs)
        self.space = space

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)  # keeps ASHA's rung bookkeeping
        if self.space.baseline_of(trial.config) is not None:
            return self.CONTINUE
        return decision


def make_scheduler(kind: str, base: dict, space):
    if kind == "none":
        return FIFOScheduler()
    cfg = from_flat(base)
    if not cfg.eval_every:
        raise ValueError("--scheduler asha needs intermediate FIDs, but this preset has eval_every = 0")
    return BaselineSafeASHA(
        space,
        time_attr="step",
        metric=EARLY_METRIC,
        mode="min",
        max_t=cfg.steps,
        grace_period=cfg.eval_every,
        reduction_factor=2,
    )


def run_sweep(args, folder: Path, space, preset: str, base: dict) -> int:
    name = folder.name
    if args.resume:
        saved = load_sweep_args(folder)
        trials, seed, scheduler_kind = saved["trials"], saved["seed"], saved["scheduler"]
    else:
        trials = args.trials or max(3, len(space.points))
        seed, scheduler_kind = args.seed, args.scheduler
        folder.mkdir(parents=True)
        atomic_write_json(
            folder / "sweep.json",
            {
                "name": name,
                "space": space.name,
                "preset": preset,
                "base": base,
                "trials": trials,
                "seed": seed,
                "scheduler": scheduler_kind,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        gpus = args.gpus_per_trial
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        table = SweepTable(folder.parent, name, space.name)
        callback = RecordsCallback(table, space, trials, quiet=args.quiet)
        fn = tune.with_resources(tune.with_parameters(trainable, base=base), {"cpu": args.cpus_per_trial, "gpu": gpus})
        path = str(folder / "ray" / "tune")
        if args.resume and tune.Tuner.can_restore(path):
            tuner = tune.Tuner.restore(
                path, trainable=fn, resume_unfinished=True, resume_errored=False, restart_errored=False
            )
        else:
            tuner = tune.Tuner(
                fn,
                tune_config=tune.TuneConfig(
                    search_alg=make_searcher(space, folder, name, seed, args.max_concurrent),
                    scheduler=make_scheduler(scheduler_kind, base, space),
                    num_samples=trials,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name="tune",
                    storage_path=str(folder / "ray"),
                    verbose=0,
                    callbacks=[callback],
                    sync_config=tune.SyncConfig(sync_artifacts=True),  # samples.png, result.json per trial
                    failure_config=tune.FailureConfig(max_failures=0),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                ),
            )
        print(
            f"sweep {name}: space {space.name}, preset {preset}, {trials} trials, "
            f"{args.cpus_per_trial:g} CPU / {gpus:g} GPU per trial -> {folder}",
            flush=True,
        )
        grid = tuner.fit()
        ended = grid.num_terminated + grid.num_errors  # Ctrl-C makes fit() return early, quietly
    finally:
        if started:
            ray.shutdown()
    return summarize(folder, name, trials, ended)


def summarize(folder: Path, name: str, trials: int, ended: int, top: int = 5) -> int:
    table = SweepTable(folder.parent, name, "")
    table.load()
    table.save()
    rows = list(table.rows.values())
    board = rank(table.frame())
    print(
        f"\n{name}: {sum(r['status'] == 'completed' for r in rows)} completed, "
        f"{sum(r['status'] in FAILED for r in rows)} failed, "
        f"{sum(r['status'] == 'stopped' for r in rows)} stopped early, of {trials}"
    )
    if len(board):
        cols = [c for c in ("rank", "trial_id", "baseline", "final_fid", "delta_vs_meanflow", "fid_kind") if c in board]
        print(board[cols].head(top).to_string(index=False))
    print(f"tables: {folder / 'trials.csv'}, {folder / 'leaderboard.csv'}, {folder.parent / 'leaderboard.csv'}")
    if ended < trials:
        print(
            f"interrupted: {ended} of {trials} trials finished; continue with "
            f"python -m sweep.run --resume --name {name} --results-dir {folder.parent}"
        )
        return 130
    return 0
