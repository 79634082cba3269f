"""Run a sweep: ``python -m sweep.run --space alpha_schedules``.

Local Ray by default (started here, stopped at the end); ``--address auto`` or
``HOST:PORT`` joins a running cluster. Each trial is ``trainer.train`` on one
config suggested by Optuna (seeded random search; --sampler tpe for TPE); known baselines in the space run
first.
Results: ``<results-dir>/<name>/trials.csv`` and ``leaderboard.csv``, merged into
``<results-dir>/leaderboard.csv``. Ctrl-C or a killed driver: rerun with
``--resume --name NAME``; finished trials are kept and the study continues.
SIGTERM (a scheduler's preemption, ``scancel``, a time limit) stops as Ctrl-C
does, with exit code 143; ``--resume auto --name NAME`` is the command a batch
system can rerun as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
import urllib.parse
from pathlib import Path

from search_spaces import SPACES  # noqa: E402
from sweep.flags import SAMPLER_NAMES, SCHEDULERS, add_trial_flags, ray_options, trial_flag_problem, wandb_problem  # noqa: E402
from sweep.folder import ResultsFolder, SweepFolder  # noqa: E402
from sweep.options import SweepOptions  # noqa: E402
from trainer.cli import Parser, parse_sets, usage_error, writable_dir  # noqa: E402
from trainer.config import PRESETS, SEED_MAX  # noqa: E402


COMPILE_CACHE = ResultsFolder.compile_cache.name  # no sweep may take the name of the folder all sweeps share
SETTING_KEYS = (
    "trials",
    "seeds",
    "seed",
    "sampler",
    "scheduler",
    "metric",
    "objectives",
    "max_failures",
    "storage",
    "mlflow",
    "wandb_project",
)
# sweep.json written before these keys existed
OLD_SWEEP_SETTINGS = {
    "seeds": 1,
    "sampler": "tpe",
    "metric": "final_fid",
    "objectives": "fid",
    "max_failures": 3,
    "storage": "sqlite",
    "mlflow": None,
    "wandb_project": None,
}


class UsageError(ValueError):
    """Bad command-line input: one sentence, exit code 2, nothing written."""


def parse(argv=None) -> argparse.Namespace:
    p = Parser(prog="python -m sweep.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--space", choices=list(SPACES), default="baselines", help="what to search (see --list-spaces)")
    p.add_argument(
        "--trials", type=int, default=None, help="trials in the sweep (default: the space's baselines, at least 3)"
    )
    p.add_argument(
        "--preset",
        choices=["auto", *PRESETS],
        default="auto",
        help="auto: seed when a GPU is visible, else the cpu preset",
    )
    p.add_argument("--steps", type=int, help="override the preset's training steps")
    p.add_argument("--name", help="sweep name (default: <space>-<time>); with --resume, the sweep to continue")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        choices=["auto"],
        help="continue the sweep --name after a crash, Ctrl-C or SIGTERM; '--resume auto' continues it when it "
        "exists and starts it when not (for batch systems that rerun the same command: requeue, preemption)",
    )
    p.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="none",
        help="asha stops bad trials early on intermediate FID; hyperband: asha in 3 brackets (asynchronous Hyperband)",
    )
    p.add_argument(
        "--sampler",
        choices=SAMPLER_NAMES,
        default="random",
        help="how Optuna picks configs: random (default: it beat TPE on the measured landscape, "
        "docs/search-speed.md), tpe, tpe-group (TPE per branch), sobol (a space-filling design)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every trial (the first)")
    p.add_argument(
        "--seeds", type=int, default=1, help="run every suggested config on this many seeds; Optuna is told their mean"
    )
    p.add_argument(
        "--objectives",
        choices=["fid", "fid,cost"],
        default="fid",
        help="fid,cost: a multi-objective study of FID and GPU-seconds (its Pareto front)",
    )
    p.add_argument("--metric", default="final_fid", help="what Optuna minimises: final_fid or final_fid_nfe<k>")
    p.add_argument(
        "--storage",
        default="sqlite",
        help="the Optuna study: sqlite (in the sweep folder), journal (a file there: for shared file systems), "
        "or a database URL (postgresql://..., mysql://...)",
    )
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        default=None,
        metavar="URI",
        help="log the sweep to MLflow (a parent run, a child run per trial); default store: "
        f"sqlite:///<sweep>/{SweepFolder.mlflow_db.name} (needs pip install -e '.[mlflow]')",
    )
    p.add_argument("--confirm-top", type=int, default=0, help="after the search, confirm the top K configs")
    p.add_argument("--confirm-seeds", type=int, default=3, help="fresh seeds per config for --confirm-top")
    p.add_argument("--data-dir", default="data", help="CIFAR-10 folder (on every node)")
    p.add_argument("--fid-cache", default=None, help="FID cache folder (on every node); default $MEANFLOW_FID_CACHE")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any trainer config key for every trial, e.g. --set fid_samples=5000",
    )
    p.add_argument("--list-spaces", action="store_true", help="print the search spaces and exit")
    add_trial_flags(p)
    return p.parse_args(argv)


def quiet_ray() -> None:
    """--quiet: no Tune boxes or result tables, no trial tracebacks (they are one line in trials.csv)."""
    import logging

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0; the new one prints its box
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def list_spaces() -> str:
    width = max(map(len, SPACES))
    return "\n".join(f"{name:{width}s}  {space.description}" for name, space in SPACES.items())


def pick_preset(preset: str) -> str:
    if preset != "auto":
        return preset
    import torch

    picked = "seed" if torch.cuda.is_available() else "cpu"
    print(
        f"--preset auto: {'a GPU is visible' if picked == 'seed' else 'no GPU visible'}, using '{picked}'", flush=True
    )
    return picked


def check_args(args: argparse.Namespace) -> Path:
    """Every usage check before anything is written or started; returns the sweep folder."""
    if args.trials is not None and args.trials < 1:
        raise UsageError(f"--trials {args.trials} must be at least 1")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps} must be a positive integer")
    problem = trial_flag_problem(args)
    if problem:
        raise UsageError(problem)
    if not 0 <= args.seed <= SEED_MAX:
        raise UsageError(f"--seed {args.seed} must be an integer in [0, {SEED_MAX}]")
    if args.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.name):
        raise UsageError(f"--name {args.name!r} may hold only letters, digits, '.', '_' and '-'")
    if args.name == COMPILE_CACHE:
        raise UsageError(f"--name {COMPILE_CACHE} is the results folder's compile cache; choose another name")
    if args.resume and not args.name:
        raise UsageError(f"--resume{' auto' if args.resume == 'auto' else ''} needs --name, the sweep to continue")
    results = Path(args.results_dir).absolute()
    problem = writable_dir(args.results_dir, "--results-dir")  # a file, a folder this user cannot write, /proc/...
    if problem:
        raise UsageError(problem)
    name = args.name or f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    files = ResultsFolder(results).sweep(name)
    folder = files.path
    started = files.sweep_json.exists() or files.trials_csv.exists()
    if args.resume == "auto":  # the same command on every run of a batch job: continue, or start
        args.resume = started
        print(f"--resume auto: {'continuing' if started else 'starting'} sweep {name}", flush=True)
    if args.resume and not folder.is_dir():
        raise UsageError(f"--resume: there is no sweep {name!r} in {results}")
    if args.resume and not started:
        raise UsageError(
            f"sweep {name!r} never started (its folder has no {files.sweep_json.name}): run it again without --resume"
        )
    if not args.resume and started:
        raise UsageError(f"sweep {name!r} already exists in {results}: use --resume to continue it or another --name")
    # a folder without sweep.json or trials.csv is what a failed start left: a new run takes it over
    return folder


def check_resume(folder: Path) -> dict:
    """A sweep's saved state, checked before Ray starts: sweep.json, trials.csv and the Optuna study."""
    from sweep.tables import DamagedTable, load_sweep_json, read_table

    files = SweepFolder(folder)
    try:
        saved = load_sweep_json(folder)
        read_table(files.trials_csv)
    except DamagedTable as e:
        raise UsageError(str(e)) from None
    check_owned(folder)
    db = files.optuna_db
    if saved.get("storage", "sqlite") == "sqlite" and db.exists():
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                con.execute("select study_name from studies").fetchall()
        except sqlite3.Error as e:
            raise UsageError(f"{db} is not an Optuna study ({e}); move it away to resume with a fresh study") from None
    return saved


def check_owned(folder: Path) -> None:
    """--resume unpickles Tune's saved state (running whatever code the pickles name), so the sweep's folders
    and pickles must be the user's own and writable by nobody else: a shared results folder is untrusted."""
    me = os.getuid()
    ray = SweepFolder(folder).ray
    paths = [folder, *folder.glob(ray.name), *ray.glob("*"), *ray.glob("*/*.pkl")]
    paths += list(ray.glob("*/*/*.pkl"))  # each trial's params.pkl
    for path in paths:
        try:
            info = path.lstat()
        except OSError:
            continue
        if info.st_uid != me or info.st_mode & 0o002:
            who = "not yours" if info.st_uid != me else "writable by every user"
            raise UsageError(
                f"{path} is {who}, and --resume would unpickle Tune's state from there (running its code as "
                "you): resume only a sweep folder that you own and nobody else can write"
            )


def sweep_settings(args: argparse.Namespace, space, base: dict) -> dict:
    """The search's own settings (saved in sweep.json), each checked before Ray starts."""
    from trainer.config import from_flat

    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds} must be at least 1")
    if args.storage not in ("sqlite", "journal") and "://" not in args.storage:
        raise UsageError(f"--storage {args.storage!r} is not sqlite, journal or a database URL (scheme://...)")
    if "://" in args.storage and urllib.parse.urlsplit(args.storage).password:
        raise UsageError(
            f"--storage: the database URL carries a password, which ps shows to every user and "
            f"{SweepFolder.sweep_json.name} would keep; leave it out and give it to the database client "
            "(~/.pgpass, ~/.my.cnf or its environment)"
        )
    if args.seeds > 1 and args.scheduler != "none":
        raise UsageError(
            f"--seeds > 1 cannot go with --scheduler {args.scheduler}: it would stop single seeds of a config"
        )
    if args.confirm_top < 0:
        raise UsageError(f"--confirm-top {args.confirm_top} must be 0 (off) or a number of configs")
    if args.confirm_top and args.confirm_seeds < 2:
        raise UsageError(f"--confirm-seeds {args.confirm_seeds} must be at least 2 (an interval needs two seeds)")
    nfe = from_flat(base).fid_nfe
    metrics = ["final_fid"] + [f"final_fid_nfe{k}" for k in nfe]
    if args.metric not in metrics:
        raise UsageError(
            f"--metric {args.metric!r} is not measured; choose one of: {', '.join(metrics)} "
            "(add step counts with --set fid_nfe=1,2)"
        )
    if args.mlflow is not None:
        from sweep.tracking import check_available

        if check_available():
            raise UsageError(check_available())
        if args.mlflow and "://" not in args.mlflow and not args.mlflow.startswith("databricks"):
            raise UsageError(
                f"--mlflow {args.mlflow!r} is not a tracking URI (scheme://...: sqlite:///..., http://...)"
            )
    return {
        "trials": args.trials or max(3, len(space.points)),
        "seeds": args.seeds,
        "seed": args.seed,
        "sampler": args.sampler,
        "scheduler": args.scheduler,
        "metric": args.metric,
        "objectives": args.objectives,
        "max_failures": args.max_failures,
        "storage": args.storage,
        "mlflow": args.mlflow,  # None: off; "": the sweep folder's own store
        "wandb_project": args.wandb,  # None: off (--wandb)
    }


def base_config(args: argparse.Namespace, preset: str) -> dict:
    base = {"preset": preset, "seed": args.seed, "data_dir": str(Path(args.data_dir).absolute())}
    if args.steps is not None:
        base["steps"] = args.steps
    if args.fid_cache:
        base["fid_cache"] = str(Path(args.fid_cache).expanduser().absolute())
    # compiled graphs kept for every trial of the sweep, on the results folder every node shares
    base["compile_cache"] = str(ResultsFolder(Path(args.results_dir).expanduser().absolute()).compile_cache)
    try:
        base.update(parse_sets(args.set))
    except ValueError as e:
        raise UsageError(str(e)) from None
    return base


def check_configs(base: dict, space, local: bool) -> None:
    """Builds every baseline's config and, on a local run, opens the data and FID cache, before Ray starts.

    Where the network is allowed (no MEANFLOW_OFFLINE), a missing CIFAR-10 or
    FID cache is fetched here, once, atomically: the first trial finds them.
    On a cluster (--address) the same happens on every node in the driver's
    node check.
    """
    from trainer.config import from_flat
    from trainer.data import DataError, load_images
    from trainer.fid_cache import FidCacheMissing, cache_dir, ensure_cache

    try:
        configs = [from_flat({**base, **point}) for point in space.points or [{}]]
        cfg = configs[0]
        if local:
            load_images(cfg.dataset, cfg.data_dir)
            if cfg.fid_mode == "clean-fid":
                ensure_cache(cache_dir(cfg.fid_cache or None))
    except (ValueError, DataError, FidCacheMissing, OSError) as e:
        raise UsageError(str(e)) from None


def main(argv=None) -> int:
    from sweep import signals

    args = parse(argv)
    return signals.stoppable(lambda: run(args), "interrupted: a sweep that had started continues with --resume")


def run(args: argparse.Namespace) -> int:
    from sweep import signals

    if args.list_spaces:
        print(list_spaces())
        return 0
    try:
        signals.grace_seconds()  # read by the stop handler: a bad value is refused before anything starts
        folder = check_args(args)
        if args.resume:
            saved = check_resume(folder)
            preset, space = saved["preset"], SPACES[saved["space"]]
            base = saved["base"]
            settings = {**OLD_SWEEP_SETTINGS, **{k: saved[k] for k in SETTING_KEYS if k in saved}}
        else:
            preset, space = pick_preset(args.preset), SPACES[args.space]
            base = base_config(args, preset)
            check_configs(base, space, local=args.address is None)
            settings = sweep_settings(args, space, base)
        problem = wandb_problem(args.wandb, settings["wandb_project"], folder, bool(args.resume))
        if problem:
            raise UsageError(problem)
    except (UsageError, ValueError) as e:
        return usage_error(str(e))
    from sweep.cluster import ClusterError, probe_address
    from sweep.driver import run_sweep

    try:
        if args.address:  # before Ray: an unreachable head is one sentence, not minutes of retries
            probe_address(args.address)
    except ClusterError as e:
        return usage_error(str(e))

    if args.quiet:
        quiet_ray()
    options = SweepOptions(
        ray=ray_options(args),
        resume=bool(args.resume),  # check_args has decided --resume auto
        confirm_top=args.confirm_top,
        confirm_seeds=args.confirm_seeds,
    )
    try:
        return run_sweep(options, folder, space, preset, base, settings)
    except ClusterError as e:  # raised before anything is written
        return usage_error(str(e))


if __name__ == "__main__":
    sys.exit(main())
