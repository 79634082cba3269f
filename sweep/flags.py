"""The flags ``sweep.run`` and ``sweep.confirm`` share (where results go, which Ray, how trials are placed), with
their checks: each defined once."""

from __future__ import annotations

import argparse
import dataclasses
import math

from sweep.options import RayOptions

# Optuna samplers a sweep can use (sweep.search.SAMPLERS builds them; named here so the CLI loads no Optuna)
SAMPLER_NAMES = ("tpe", "random", "tpe-group", "sobol")
SCHEDULERS = ("none", "asha", "hyperband")  # sweep.search.make_scheduler builds them
WANDB_PROJECT = "meanflow-sweep"  # --wandb with no project


def add_trial_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", default="results")
    p.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a Ray of this run's own)")
    p.add_argument("--max-concurrent", type=int, default=None, help="trials at once (default: what resources allow)")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="default: 1 when a GPU is visible, else 0")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument(
        "--max-failures", type=int, default=3, help="restarts of a trial whose worker, actor or node died (default 3)"
    )
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    p.add_argument(
        "--wandb",
        nargs="?",
        const=WANDB_PROJECT,
        default=None,
        metavar="PROJECT",
        help=f"log to Weights & Biases (default project {WANDB_PROJECT}): a group per sweep, a run per trial; "
        "offline into <sweep>/wandb unless an API key is configured (needs pip install -e '.[wandb]')",
    )


def ray_options(args: argparse.Namespace) -> RayOptions:
    """The shared flags as the library takes them (each field of ``RayOptions`` is the flag of its name)."""
    return RayOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RayOptions)})


def trial_flag_problem(args: argparse.Namespace) -> str | None:
    """The first shared flag with a bad value, as one sentence, or None."""
    if args.max_concurrent is not None and args.max_concurrent < 1:
        return f"--max-concurrent {args.max_concurrent} must be at least 1"
    if not (math.isfinite(args.cpus_per_trial) and args.cpus_per_trial > 0):
        return f"--cpus-per-trial {args.cpus_per_trial} must be a finite number > 0"
    if args.gpus_per_trial is not None and not (math.isfinite(args.gpus_per_trial) and args.gpus_per_trial >= 0):
        return f"--gpus-per-trial {args.gpus_per_trial} must be a finite number >= 0"
    if args.max_failures < 0:
        return f"--max-failures {args.max_failures} must be 0 or more"
    return None


def wandb_problem(asked: str | None, saved: str | None, folder, resume: bool) -> str | None:
    """Why W&B cannot log this run (checked before Ray starts), or None. ``asked``: --wandb; ``saved``: the
    project the sweep started with (a resumed sweep keeps it)."""
    if resume and asked is not None and asked != saved:
        started = f"with --wandb {saved}" if saved else "without --wandb"
        return f"--wandb {asked}: sweep {folder.name} was started {started}, and a resumed sweep keeps its settings"
    project = saved if resume else asked
    if project is None:
        return None
    from sweep.wandb_tracking import check

    return check(project, folder)
