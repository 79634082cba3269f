"""The search behind ``sweep.run`` (imported only once the arguments are good): the Tuner, its run, the
summary."""

from __future__ import annotations

import time
from pathlib import Path

from ray import tune

from sweep import signals
from sweep.confirm import confirm
from sweep.progress import RecordsCallback, named
from sweep.columns import ENDED, FAILED
from sweep.configs import Configs
from sweep.folder import ResultsFolder, SweepFolder
from sweep.options import SweepOptions
from sweep.ranking import fid_columns, rank
from sweep.tables import DamagedTable, SweepTable, load_sweep_json, read_csv
from search_spaces import SPACES
from sweep.adapters import tune_config_of
from sweep.search import close_orphans, make_scheduler, make_searcher
from sweep.study import study_storage
from sweep.tuning import fit, preflight, ray_running, run_config, trial_fn, with_callbacks
from sweep.wandb_tracking import tracker
from trainer.runtime import atomic_write_json


def run_sweep(
    options: SweepOptions, folder: Path, space, preset: str, base: dict, settings: dict, make_trial=trial_fn
) -> int:
    """The search; ``settings`` (trials, seeds, seed, scheduler, metric, objectives) are saved for --resume;
    ``options``: how it runs (which Ray, resume or start, a confirmation after).

    ``make_trial(base, folder, resources)``: the trainable with its resources (``sweep.tuning.trial_fn``;
    ``sweep.simulate`` gives its simulated trial).

    Ray is joined and checked (a trial fits a node; on a cluster, every node's
    data, cache and results folder) before anything is written.
    """
    configs = Configs(base)  # a trial's config: built once here (kept for the callbacks), once in its worker
    with ray_running(options.ray.address):
        resources = preflight(options.ray, configs.of({}), folder.parent)
        if not options.resume:
            write_sweep_json(folder, space, preset, base, settings)
        return search(options, folder, space, preset, configs, settings, resources, make_trial)


def write_sweep_json(folder: Path, space, preset: str, base: dict, settings: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)  # a failed start may have left it, empty
    record = {"name": folder.name, "space": space.name, "preset": preset, "base": base, **settings}
    atomic_write_json(SweepFolder(folder).sweep_json, {**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def search(
    options: SweepOptions,
    folder: Path,
    space,
    preset: str,
    configs: Configs,
    settings: dict,
    resources: dict,
    make_trial=trial_fn,
) -> int:
    name, total, base = folder.name, settings["trials"] * settings["seeds"], configs.base
    files = SweepFolder(folder)
    table = SweepTable(folder.parent, name, space.name)
    callback = RecordsCallback(table, space, total, configs, quiet=options.ray.quiet, needs_gpu=resources["gpu"] > 0)

    def on_deadline() -> int:  # Tune did not stop in time after a signal: the summary from our own tables
        return summarize(folder, name, total, asha=settings["scheduler"] != "none")

    callbacks = [signals.GracefulStop(on_deadline, in_flight=callback.in_flight), callback]
    if settings.get("mlflow") is not None:
        from sweep.tracking import MlflowTracking, default_uri

        uri = settings["mlflow"] or default_uri(folder)
        callbacks.append(MlflowTracking(uri, name, folder, settings, configs))
    wandb = tracker(settings.get("wandb_project"), folder, configs, space)
    callbacks += [wandb] if wandb else []
    fn = make_trial(base, folder, resources)
    path = str(files.tune)
    if options.resume and tune.Tuner.can_restore(path):
        # trials that ended in an infrastructure error continue from their last checkpoint
        tuner = tune.Tuner.restore(path, trainable=fn, resume_unfinished=True, resume_errored=True)
        with_callbacks(tuner, callbacks)
        # Ray restores no scheduler state: ASHA continues from the rungs it wrote
        scheduler = make_scheduler(settings["scheduler"], configs.of({}), space, files.rungs, resume=True)
        if getattr(scheduler, "skipped", 0):
            print(f"warning: {scheduler.skipped} damaged lines of {files.rungs} skipped", flush=True)
        tune_config_of(tuner).scheduler = scheduler
    else:
        tuner = tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(
                search_alg=make_searcher(space, folder, name, settings, options.ray.max_concurrent, options.resume),
                scheduler=make_scheduler(settings["scheduler"], configs.of({}), space, files.rungs),
                num_samples=total,
                reuse_actors=True,
            ),
            run_config=run_config(files.tune, callbacks, settings["max_failures"]),
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
    code = summarize(folder, name, total, asha=settings["scheduler"] != "none")
    if wandb:
        wandb.summarize({"leaderboard": read_csv(files.leaderboard_csv)})
    if code == 0 and options.confirm_top:
        code = confirm(
            options.ray, folder, options.confirm_top, options.confirm_seeds, wandb=settings.get("wandb_project")
        )
    return code


def summarize(folder: Path, name: str, trials: int, top: int = 5, asha: bool = False) -> int:
    """Prints the ranked summary; 128 + signal when stopped by one (130 Ctrl-C, 143 SIGTERM), 1 when no trial
    completed, else 0. Reads only the sweep's own tables (it also runs when Ray is gone)."""
    table = SweepTable(folder.parent, name, "")
    table.load()
    if signals.stopping():
        table.interrupt_running()
    table.save()
    rows = list(table.rows.values())
    ended = sum(r["status"] in ENDED for r in rows)  # from the table: Tune's grid counts interrupted trials as ended
    metric = sweep_metric(folder)
    board = rank(table.frame(), metric)
    counts = {word: sum(r["status"] in statuses for r in rows) for word, statuses in COUNTED.items()}
    shown = [f"{n} {word}" for word, n in counts.items() if n or word != "not finished"]
    print(f"\n{name}: {', '.join(shown)}, of {trials}")
    if len(board):
        fids = fid_columns(board, first=metric)  # the 1- and 2-step FIDs beside the 10-step one
        board["objective"] = [named(r) for r in board.to_dict("records")]
        cols = [c for c in ("rank", "trial_id", "objective", *fids, "delta_vs_meanflow", "fid_kind") if c in board]
        print(f"ranked by {metric}" if metric != "final_fid" else "ranked by final_fid (the protocol's 10 steps)")
        print(board[cols].head(top).to_string(index=False))
    files, merged = SweepFolder(folder), ResultsFolder(folder.parent).leaderboard_csv
    print(f"tables: {files.trials_csv}, {files.leaderboard_csv}, {merged}")
    for line in unfinished(rows, folder):
        print(line)
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
        print(f"{name}: every trial failed; see the error column of {files.trials_csv}")
        return 1
    return 0


def sweep_metric(folder: Path) -> str:
    """The FID the sweep minimised (sweep.json's ``metric``), which its summary ranks by."""
    try:
        return load_sweep_json(folder).get("metric", "final_fid")
    except DamagedTable:
        return "final_fid"


# the summary's counts: what each word counts, in its order ("not finished" only where there are some)
COUNTED = {
    "completed": ("completed",),
    "failed": FAILED,
    "stopped early": ("stopped",),
    "not finished": ("interrupted", "running", "pending"),
}


def unfinished(rows: list[dict], folder: Path) -> list[str]:
    """Lines naming every config handed out and not ended (by its baseline or objective and its trial id) and
    every baseline the sweep set out to run that no row holds: nothing hides behind a count."""
    lines = []
    for r in rows:
        if r["status"] not in ENDED:
            lines.append(f"not finished: {named(r)} ({r['trial_id']}, {r['status']})")
    try:
        saved = load_sweep_json(folder)
        space = SPACES[saved["space"]]
    except (DamagedTable, KeyError):
        return lines
    started = {r.get("baseline") for r in rows}
    for name in space.point_names[: saved.get("trials", len(space.point_names))]:
        if name not in started:
            lines.append(f"not started: baseline {name}")
    return lines


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
