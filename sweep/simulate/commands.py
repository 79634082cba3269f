"""The three measurements of ``python -m sweep.simulate``; each writes its CSVs as runs finish (a stopped
measurement keeps what it finished) and prints its table and the goals it is read against."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from search_spaces import SPACES
from sweep import signals
from sweep.simulate import analysis
from sweep.simulate.runner import STRATEGIES, Run, run_once, sim_ray
from sweep.tables import write_csv

GOAL_SHARE = 1 / 3  # TPE+ASHA should reach random's whole-budget best in this share of its GPU-hours
GOAL_TRIAL_S, GOAL_RESULT_MS = 2.0, 50.0  # the driver's cost per trial and per result at 1,000 trials x 64


def model_for(args):
    """The simulation model of repetition 0 from the command's flags (``of_rep`` gives the others)."""
    from sweep.simulate.model import COSTS_FILE, build_model

    return build_model(
        SPACES[args.space],
        rep=0,
        noise=args.noise,
        costs_path=Path(args.costs) if args.costs else COSTS_FILE,
        seconds_per_trial=args.seconds_per_trial,
        trial_minutes=args.trial_minutes,
        fid_seconds=args.fid_seconds,
    )


def _stopped(run: Run) -> bool:
    return signals.stopping() or run.code >= 128


def search(args, out: Path, model) -> int:
    strategies = args.strategies.split(",")
    curves, runs = [], []
    print(
        f"simulate search: {args.space}, {len(strategies)} strategies x {args.reps} repetitions, "
        f"{args.trials} trials ({args.trials * args.asha_trials} with ASHA) on {args.gpus} simulated GPUs -> {out}",
        flush=True,
    )
    with sim_ray(args.gpus):
        for rep in range(args.reps):
            rep_model = model.of_rep(rep)
            for strategy in strategies:
                asha = STRATEGIES[strategy]["scheduler"] == "asha"
                trials = args.trials * args.asha_trials if asha else args.trials
                run = run_once(SPACES[args.space], strategy, rep=rep, gpus=args.gpus, trials=trials,
                               model=rep_model, root=out / "runs")  # fmt: skip
                if _stopped(run):
                    _search_tables(out, curves, args)
                    return run.code or 130
                curves.append(analysis.curve(run))
                runs.append(analysis.overhead(run, rep_model) | {"rep": rep})
                write_csv(pd.concat(curves, ignore_index=True), out / "curves.csv")
                write_csv(pd.DataFrame(runs), out / "runs.csv")
                best = curves[-1]["incumbent_true_fid"].iloc[-1]
                print(f"  rep {rep} {strategy:22s} true FID {best:7.3f}  {run.wall_s:6.1f} s", flush=True)
    summary = _search_tables(out, curves, args)
    row = summary[summary["strategy"] == "tpe+asha"]
    if len(row) and "random" in strategies:
        share = float(row["budget_share_to_random_best"].iloc[0])
        verdict = "met" if share <= GOAL_SHARE else "not met"
        print(f"goal (tpe+asha reaches random's best in <= 1/3 of its GPU-hours): {share:.2f} of them, {verdict}")
    return 0


def _search_tables(out: Path, curves: list, args) -> pd.DataFrame:
    """search.csv and search.png from the runs so far, printed; the summary (empty before any run)."""
    if not curves:
        return pd.DataFrame(columns=["strategy"])
    frame = pd.concat(curves, ignore_index=True)
    summary = analysis.search_summary(frame)
    write_csv(summary, out / "search.csv")
    title = (
        f"{args.space}: {args.trials} trials ({args.trials * args.asha_trials} with ASHA) on {args.gpus} GPUs, "
        "median and quartiles of "
        f"{frame['rep'].nunique()} landscapes, noise {args.noise}"
    )
    analysis.plot_curves(frame, out / "search.png", title)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
    print(f"tables: {out / 'search.csv'}, {out / 'curves.csv'}, {out / 'runs.csv'}; plot: {out / 'search.png'}")
    return summary


def overhead(args, out: Path, model) -> int:
    rows = []
    print(f"simulate overhead: {args.strategy} on {args.space}, trials {args.trials} x GPUs {args.gpus}", flush=True)
    for gpus in args.gpus:
        with sim_ray(gpus):
            for trials in args.trials:
                run = run_once(SPACES[args.space], args.strategy, rep=0, gpus=gpus, trials=trials, model=model,
                               root=out / "runs")  # fmt: skip
                if _stopped(run):
                    return run.code or 130
                rows.append(analysis.overhead(run, model))
                write_csv(pd.DataFrame(rows), out / "overhead.csv")
                r = rows[-1]
                print(
                    f"  {trials:5d} trials x {gpus:3d} GPUs: driver {r['driver_cpu_s_per_trial']:.3f} CPU-s/trial, "
                    f"{r['driver_cpu_ms_per_result']:.1f} CPU-ms/result, GPU idle {r['idle_gpu_s_per_trial']:.1f} "
                    f"s/trial, wall {r['wall_s']:.0f} s",
                    flush=True,
                )
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    big = frame[(frame["trials"] == max(args.trials)) & (frame["gpus"] == max(args.gpus))].iloc[0]
    ok = big["driver_cpu_s_per_trial"] < GOAL_TRIAL_S and big["driver_cpu_ms_per_result"] < GOAL_RESULT_MS
    print(
        f"goal at {big['trials']} trials x {big['gpus']} GPUs (< {GOAL_TRIAL_S:g} s/trial, < {GOAL_RESULT_MS:g} "
        f"ms/result of driver CPU): {'met' if ok else 'not met'}; table: {out / 'overhead.csv'}"
    )
    return 0


def tables(args, out: Path, model) -> int:
    from sweep.simulate.tables import time_writes

    rows = time_writes(SPACES[args.space], model, out / "runs", sorted(args.rows))
    frame = pd.DataFrame(rows)
    for col in ("trials_csv_ms", "with_boards_ms", "study_ms"):  # how a write grows: ms per 1,000 rows
        if len(frame) > 1:
            slope = (frame[col].iloc[-1] - frame[col].iloc[0]) / (frame["rows"].iloc[-1] - frame["rows"].iloc[0])
            print(f"{col}: +{1000 * slope:.1f} ms per 1,000 rows" if math.isfinite(slope) else col)
    write_csv(frame, out / "tables.csv")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"table: {out / 'tables.csv'}")
    return 0
