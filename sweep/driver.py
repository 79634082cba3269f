"""The Tune + Optuna machinery behind ``sweep.run`` (imported only once the arguments are good)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter, Repeater
from ray.tune.search.optuna import OptunaSearch

from sweep import signals
from sweep.cluster import check_fits, check_nodes, connect
from sweep.progress import RecordsCallback
from sweep.records import ENDED, FAILED, SweepTable, rank
from sweep.study import study_storage
from sweep.trainable import trainable
from trainer.config import from_flat
from trainer.runtime import atomic_write_json, removed_if_left_empty

METRIC = "final_fid"  # what Optuna minimises by default; ASHA-stopped trials have none and are PRUNED there
EARLY_METRIC = "intermediate_fid"  # what ASHA compares
COST = "gpu_seconds"  # the second objective of --objectives fid,cost


class FinalOnlyOptunaSearch(OptunaSearch):
    """OptunaSearch told only final results.

    Why not the stock searcher with one metric name for every FID report (tried for
    the "one place per idea" issue): its on_trial_result reads ``result[metric]``
    and raises on a trial's own failure, which is reported as data with no FID
    (never a fake one), and its on_trial_complete raises on a trial id a restored
    searcher does not know (tests/sweep/test_sweep.py shows both).

    Intermediate reports carry ``intermediate_fid`` (for ASHA), not ``final_fid``;
    the stock searcher indexes every result by its metric and would fail on them,
    and a resumed sweep can replay results of trials Optuna already closed.
    Early stopping is ASHA's job, so Optuna needs no intermediate values: each
    trial's final value arrives through ``on_trial_complete``.
    """

    def on_trial_result(self, trial_id: str, result: dict):
        return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if result and result.get("status") in FAILED:  # the trial's own failure, reported as data
            result, error = None, True
        if trial_id in self._ot_trials:  # unknown after some restores: nothing to tell
            super().on_trial_complete(trial_id, result, error)


class SeedGroups(Repeater):
    """Runs every suggested config on ``repeat`` seeds (base seed + 0 .. repeat - 1) and tells the searcher their mean.

    Ray's Repeater averages with nanmean, which drops a failed seed silently;
    here a group with any failed seed is told as failed (Optuna FAIL), never as
    the mean of the rest. The seed goes into the trial's config as ``seed``, so
    it is a column of its own. Groups are saved with the searcher, so a resumed
    sweep keeps counting them.
    """

    def __init__(self, searcher, repeat: int, base_seed: int):
        super().__init__(searcher, repeat=repeat, set_index=False)
        self.base_seed = base_seed

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config["seed"] = self.base_seed + self._trial_id_to_group[trial_id].count() - 1
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False, **kwargs):
        group = self._trial_id_to_group.get(trial_id)
        if group is None:  # a trial of a group this searcher never saw (restored without its state)
            return
        metrics = self.searcher.metric if isinstance(self.searcher.metric, list) else [self.searcher.metric]
        ok = not error and result is not None and all(m in result for m in metrics)  # a failed status has none
        group.report(trial_id, tuple(result[m] for m in metrics) if ok else "failed")
        if group.finished_reporting():
            scores = group.scores()
            if "failed" in scores:
                self.searcher.on_trial_complete(group.primary_trial_id, result=None, error=True)
            else:
                means = [sum(s[i] for s in scores) / len(scores) for i in range(len(metrics))]
                self.searcher.on_trial_complete(group.primary_trial_id, result=dict(zip(metrics, means)))

    def save(self, checkpoint_path: str):
        import pickle

        super().save(checkpoint_path)
        with open(f"{checkpoint_path}.groups", "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str):
        import pickle

        super().restore(checkpoint_path)
        groups = Path(f"{checkpoint_path}.groups")
        if groups.is_file():
            self.set_state(pickle.loads(groups.read_bytes()))


def close_orphans(storage, name: str) -> int:
    """Once every trial has ended: Optuna trials still RUNNING belong to a driver that was killed (its searcher
    state, restored from an older checkpoint, asked again for that config). They are closed as FAIL, so the
    study keeps no stale row; the config itself was told once, by the resumed run."""
    study = optuna.load_study(study_name=name, storage=storage)
    orphans = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    for t in orphans:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return len(orphans)


def make_searcher(space, folder: Path, name: str, settings: dict, max_concurrent: int | None):
    """Seeded TPE over the space; with ``objectives`` fid,cost its multi-objective form (MOTPE).

    MOTPE rather than NSGA-II: NSGA-II evolves populations of ~50 per
    generation, more trials than most sweeps here run; TPE models every trial.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = study_storage(settings.get("storage", "sqlite"), folder)
    metric = settings["metric"]
    multi = settings["objectives"] == "fid,cost"
    searcher = FinalOnlyOptunaSearch(
        space=space.define,
        metric=[metric, COST] if multi else metric,
        mode=["min", "min"] if multi else "min",
        points_to_evaluate=space.points or None,
        sampler=optuna.samplers.TPESampler(seed=settings["seed"]),
        storage=storage,
        study_name=name,
    )
    if settings["seeds"] > 1:
        searcher = SeedGroups(searcher, settings["seeds"], settings["seed"])
    total = settings["trials"] * settings["seeds"]
    return Interruptible(searcher, max_concurrent=max_concurrent or total)


class Interruptible(ConcurrencyLimiter):
    """The outermost searcher (a concurrency limit of all trials when none is asked for).

    While the driver stops on a signal, a trial that ends without its final
    result was interrupted, not failed: nobody is told (neither this limit nor
    the searchers it wraps), so after ``--resume`` the trial continues under
    its id and its Optuna trial, still RUNNING, is told once, when it ends.
    """

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if signals.stopping() and not (result and METRIC in result):
            return
        super().on_trial_complete(trial_id, result=result, error=error)


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


@contextlib.contextmanager
def ray_running(address: str | None):
    """Ray for the block: joins ``address`` or starts a local instance (stopped after), unless one is up."""
    started = not ray.is_initialized()
    if started:
        connect(address)
        signals.raise_on_stop()  # a local Ray head has just put in its own SIGTERM handler
    try:
        yield
    finally:
        if started:
            ray.shutdown()
        signals.settled()


def trial_resources(args) -> dict:
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    return {"cpu": args.cpus_per_trial, "gpu": gpus}


def trial_fn(base: dict, folder: Path, resources: dict):
    """The trainable with this sweep's base config and its finals folder, on ``resources`` per trial."""
    return tune.with_resources(
        tune.with_parameters(trainable, base=base, finals=str(folder / "finals")),
        {"cpu": resources["cpu"], "gpu": resources["gpu"]},
    )


def run_config(folder: Path, name: str, callbacks: list, max_failures: int) -> tune.RunConfig:
    """Tune's run settings. ``max_failures``: restarts of a trial whose worker, actor or node died (its own
    failures end it with a status instead, and are never retried)."""
    return tune.RunConfig(
        name=name,
        storage_path=str(folder / "ray"),
        verbose=0,
        callbacks=callbacks,
        sync_config=tune.SyncConfig(sync_artifacts=True),  # samples.png, result.json per trial
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
    )


def preflight(args, base: dict, results_dir: Path) -> dict:
    """Inside Ray, before anything is written: a trial fits some node and, on a cluster, every node checks out."""
    resources = trial_resources(args)
    check_fits(resources["cpu"], resources["gpu"])
    if args.address:
        with removed_if_left_empty(results_dir):
            check_nodes(base, results_dir)
    return resources


def run_sweep(args, folder: Path, space, preset: str, base: dict, settings: dict) -> int:
    """The search; ``settings`` (trials, seeds, seed, scheduler, metric, objectives) are saved for --resume.

    Ray is joined and checked (a trial fits a node; on a cluster, every node's
    data, cache and results folder) before anything is written.
    """
    with ray_running(args.address):
        resources = preflight(args, base, folder.parent)
        if not args.resume:
            write_sweep_json(folder, space, preset, base, settings)
        return search(args, folder, space, preset, base, settings, resources)


def write_sweep_json(folder: Path, space, preset: str, base: dict, settings: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)  # a failed start may have left it, empty
    record = {"name": folder.name, "space": space.name, "preset": preset, "base": base, **settings}
    atomic_write_json(folder / "sweep.json", {**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def search(args, folder: Path, space, preset: str, base: dict, settings: dict, resources: dict) -> int:
    name, total = folder.name, settings["trials"] * settings["seeds"]
    table = SweepTable(folder.parent, name, space.name)
    callback = RecordsCallback(table, space, total, quiet=args.quiet, base=base, needs_gpu=resources["gpu"] > 0)

    def on_deadline() -> int:  # Tune did not stop in time after a signal: the summary from our own tables
        return summarize(folder, name, total, asha=settings["scheduler"] == "asha")

    fn = trial_fn(base, folder, resources)
    path = str(folder / "ray" / "tune")
    if args.resume and tune.Tuner.can_restore(path):
        # trials that ended in an infrastructure error continue from their last checkpoint
        tuner = tune.Tuner.restore(path, trainable=fn, resume_unfinished=True, resume_errored=True)
        with_callbacks(tuner, [signals.GracefulStop(on_deadline), callback])
    else:
        tuner = tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(
                search_alg=make_searcher(space, folder, name, settings, args.max_concurrent),
                scheduler=make_scheduler(settings["scheduler"], base, space),
                num_samples=total,
                reuse_actors=True,
            ),
            run_config=run_config(
                folder, "tune", [signals.GracefulStop(on_deadline), callback], settings["max_failures"]
            ),
        )
    seeds = f" x {settings['seeds']} seeds" if settings["seeds"] > 1 else ""
    print(
        f"sweep {name}: space {space.name}, preset {preset}, {settings['trials']} configs{seeds}, "
        f"{resources['cpu']:g} CPU / {resources['gpu']:g} GPU per trial -> {folder}",
        flush=True,
    )
    fit(tuner, table)
    if sum(r["status"] in ENDED for r in table.rows.values()) >= total:
        close_orphans(study_storage(settings.get("storage", "sqlite"), folder), name)
    code = summarize(folder, name, total, asha=settings["scheduler"] == "asha")
    if code == 0 and getattr(args, "confirm_top", 0):
        from sweep.confirm import confirm

        code = confirm(args, folder, args.confirm_top, args.confirm_seeds)
    return code


def with_callbacks(tuner, callbacks: list) -> None:
    """A restored Tuner runs with the callbacks pickled by the first driver; this one's replace them (its table,
    its --quiet, and the signal handling of this version). Tuner.restore takes no run config: the one adapter
    that reaches into Tune's private tuner; every resume test goes through it (tests/sweep/test_cluster_life.py)."""
    try:
        tuner._local_tuner.get_run_config().callbacks = callbacks
    except AttributeError as e:
        raise RuntimeError(f"this Ray release has no Tuner._local_tuner.get_run_config ({e}); see sweep/driver.py")


def fit(tuner, table: SweepTable) -> None:
    """Tuner.fit with stop signals handled (see sweep.signals); a stopped run's running rows become interrupted."""
    try:
        tuner.fit()
    finally:
        signals.fit_returned()  # the summary is this thread's now, unless the stop deadline took it
    if signals.stopping():
        table.interrupt_running()


def summarize(folder: Path, name: str, trials: int, top: int = 5, asha: bool = False) -> int:
    """Prints the ranked summary; 128 + signal when stopped by one (130 Ctrl-C, 143 SIGTERM), 1 when no trial
    completed, else 0. Reads only the sweep's own tables (it also runs when Ray is gone)."""
    table = SweepTable(folder.parent, name, "")
    table.load()
    if signals.stopping():
        table.interrupt_running()
    table.save()
    rows = list(table.rows.values())
    ended = sum(r["status"] in ENDED for r in rows)  # Tune counts interrupted trials as ended
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
    if asha:
        warn_early_signal(table.frame())
    if ended < trials:
        print(
            f"interrupted{' by ' + signals.signal_name() if signals.stopping() else ''}: {ended} of {trials} "
            f"trials finished; continue with python -m sweep.run --resume --name {name} --results-dir {folder.parent}",
            flush=True,
        )
        return signals.exit_code() or 130
    if not any(r["status"] == "completed" for r in rows) and any(r["status"] in FAILED for r in rows):
        print(f"{name}: every trial failed; see the error column of {folder / 'trials.csv'}")
        return 1
    return 0


def warn_early_signal(frame, threshold: float = 0.5) -> None:
    """ASHA prunes on intermediate FIDs: says so when they rank trials unlike the final FID does."""
    from sweep.stats import early_signal

    for row in early_signal(frame):
        if row["spearman"] == row["spearman"] and row["spearman"] < threshold:
            print(
                f"warning: the intermediate FID at step {row['step']} ranks trials unlike the final FID "
                f"(Spearman {row['spearman']:.2f}, Kendall {row['kendall']:.2f}, n={row['n']}): "
                f"ASHA's pruning on it is not to be trusted; consider --scheduler none"
            )
        elif row["spearman"] != row["spearman"]:
            print(f"note: {row['n']} completed trials at step {row['step']}: too few to check ASHA's early signal")
