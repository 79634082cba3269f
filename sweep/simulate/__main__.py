"""Measure the search and its driver on simulated GPUs: ``python -m sweep.simulate search|overhead|tables|landscape``.

The real driver (Ray Tune, Optuna, the scheduler, callbacks, tables) runs with a simulated trial in place of
training (``sweep.simulate.surface``: a documented response surface, learning curves, seed noise; step costs
from ``trainer.bench``), in scaled time, on Ray's custom resource ``sim_gpu``.

- ``search``: random search, TPE, and TPE with ASHA with and without intermediate values, each over
  ``--reps`` landscapes: the best true FID found against GPU-hours (search.csv, curves.csv, search.png).
- ``overhead``: the driver's CPU per trial and per result, and the GPUs' idle time, at each ``--trials``
  and ``--gpus`` (overhead.csv).
- ``landscape``: real trials of the cpu preset over a Sobol design of a space, two or more seeds each: the
  table ``search --landscape`` reads (``sweep.simulate.landscape``).
- ``tables``: milliseconds per write of trials.csv, the leaderboards and the study at each ``--rows``
  (tables.csv).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from search_spaces import SPACES
from sweep.simulate import commands, landscape, surrogate
from sweep.simulate.runner import ASHA_TRIALS, STRATEGIES
from sweep import auth, signals
from trainer.cli import Parser, usage_error


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{text!r} is not a comma list of positive integers")
    return values


def parse(argv=None):
    p = Parser(prog="python -m sweep.simulate", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = Parser(add_help=False)
    common.add_argument("--space", choices=list(SPACES), default="alpha_schedules")
    common.add_argument("--out", default="results/simulate", help="a new or empty folder for this measurement")
    common.add_argument("--noise", type=float, default=0.5, help="SD of a trial's seed effect on its final FID")
    common.add_argument("--costs", help="trainer.bench JSON lines (default: the table measured on CPU, tiny)")
    common.add_argument("--seconds-per-trial", type=float, default=1.0, help="real seconds of a pureflow trial")
    common.add_argument("--trial-minutes", type=float, default=8.0, help="GPU minutes of a pureflow trial")
    common.add_argument("--fid-seconds", type=float, default=45.0, help="GPU seconds of one final FID-50k")
    s = sub.add_parser("search", parents=[common], help="strategies against GPU-hours")
    s.add_argument("--strategies", default=",".join(STRATEGIES), help="comma list of: " + ", ".join(STRATEGIES))
    s.add_argument("--reps", type=int, default=10, help="landscapes (and search seeds) per strategy")
    s.add_argument("--trials", type=int, default=48, help="trials of each sweep without ASHA")
    s.add_argument("--asha-trials", type=int, default=ASHA_TRIALS, help="ASHA strategies run this many times --trials")
    s.add_argument("--gpus", type=int, default=8, help="simulated GPUs (trials at once)")
    s.add_argument(
        "--landscape",
        metavar="FILE",
        help="search the surrogate of this landscape table (sweep.simulate landscape) in place of the invented "
        "surface; its seed noise is the table's (--noise is not used)",
    )
    s.add_argument(
        "--landscape-metric",
        choices=surrogate.METRICS,
        default="fid",
        help="the landscape's final FID searched: 10 (fid), 1 or 2 sampler steps",
    )
    o = sub.add_parser("overhead", parents=[common], help="the driver's cost per trial and per result")
    o.add_argument("--trials", default="100,1000", help="comma list of sweep sizes")
    o.add_argument("--gpus", default="8,64", help="comma list of simulated GPUs (trials at once)")
    o.add_argument("--strategy", choices=list(STRATEGIES), default="tpe+asha")
    t = sub.add_parser("tables", parents=[common], help="write time against rows")
    t.add_argument("--rows", default="100,1000,3000", help="comma list of row counts")
    g = sub.add_parser("landscape", help="real cpu-preset trials over a Sobol design: the table search reads")
    g.add_argument("--space", choices=list(SPACES), default="alpha_schedules")
    g.add_argument("--out", default="results/landscape", help="a new folder, or a landscape's to continue it")
    g.add_argument("--configs", type=int, default=64, help="configs of the design (the space's baselines first)")
    g.add_argument("--seeds", type=int, default=2, help="seeds per config (at least 2)")
    g.add_argument("--steps", type=int, default=600, help="training steps of each trial (the cpu preset's, cut)")
    g.add_argument("--evals", type=int, default=4, help="evaluations per trial, evenly spaced (the last is final)")
    return p.parse_args(argv)


def check(args) -> Path:
    """Every usage check before Ray starts; returns the output folder."""
    for flag in ("noise", "seconds_per_trial", "trial_minutes", "fid_seconds"):
        value = getattr(args, flag)
        if not (math.isfinite(value) and (value >= 0 if flag == "noise" else value > 0)):
            bound = ">= 0" if flag == "noise" else "> 0"
            raise ValueError(f"--{flag.replace('_', '-')} {value} must be a finite number {bound}")
    if args.command == "search":
        unknown = [s for s in args.strategies.split(",") if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"--strategies: {', '.join(unknown)} unknown; choose from {', '.join(STRATEGIES)}")
        for flag in ("reps", "trials", "gpus", "asha_trials"):
            if getattr(args, flag) < 1:
                raise ValueError(f"--{flag.replace('_', '-')} {getattr(args, flag)} must be at least 1")
    else:
        for flag in ("trials", "gpus") if args.command == "overhead" else ("rows",):
            setattr(args, flag, int_list(getattr(args, flag)))
    out = Path(args.out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not an empty folder; choose a new one")
    return out


def main(argv=None) -> int:
    args = parse(argv)
    if args.command == "landscape":  # sweep.run's own command: its checks, signals and exit codes
        try:
            landscape.check(args)
        except ValueError as e:
            return usage_error(str(e))
        return landscape.run(args, sys.argv[1:] if argv is None else list(argv))
    return signals.stoppable(lambda: run(args), "interrupted: finished runs are in --out")


def run(args) -> int:
    try:
        out = check(args)
        model = commands.model_for(args)  # the cost table and the space's targets, checked before Ray starts
        auth.for_local_ray()  # its token usable (sim_ray starts Ray with it)
    except (ValueError, auth.AuthError) as e:
        return usage_error(str(e))
    out.mkdir(parents=True, exist_ok=True)
    return getattr(commands, args.command)(args, out, model)


if __name__ == "__main__":
    sys.exit(main())
