"""The three measurements of ``python -m sweep.simulate``; each writes its CSVs as runs finish (a stopped
measurement keeps what it finished) and prints its table and the goals it is read against.

The command line's side: each function here reads the parsed flags and calls the library (``runner``,
``model``, ``analysis``, ``surrogate``) with typed values; nothing outside the CLI calls them."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from search_spaces import SPACES
from sweep import signals
from sweep.simulate import analysis
from sweep.simulate.runner import STRATEGIES, TOP_K, Run, run_once, sim_ray
from sweep.tables import write_csv

GOAL_SHARE = 1 / 4  # the default should reach random's whole-budget result in this share of its GPU-hours
GOAL_TRIAL_S, GOAL_RESULT_MS = 2.0, 50.0  # the driver's cost per trial and per result at 1,000 trials x 64


def model_for(args):
    """The simulation model of repetition 0 from the command's flags (``of_rep`` gives the others); with
    ``--landscape`` its surface is the surrogate of that table, fitted here (before Ray starts)."""
    from sweep.simulate.model import COSTS_FILE, build_model, on_landscape

    model = build_model(
        SPACES[args.space],
        rep=0,
        noise=args.noise,
        costs_path=Path(args.costs) if args.costs else COSTS_FILE,
        seconds_per_trial=args.seconds_per_trial,
        trial_minutes=args.trial_minutes,
        fid_seconds=args.fid_seconds,
    )
    if getattr(args, "landscape", None):
        model = on_landscape(model, fitted_landscape(args, model.surface.dims))
    return model


def fitted_landscape(args, dims):
    """The surrogate of --landscape: the model (forest or Gaussian process) that ranks held-out configs best,
    with its facts (both models' held-out quality, the landscape's best) for ``landscape_facts``."""
    from sweep.simulate import surrogate

    _, frame = surrogate.read_table(Path(args.landscape), args.space, args.landscape_metric)
    held = {kind: surrogate.quality(frame, dims, kind=kind) for kind in surrogate.MODELS}
    kind = max(surrogate.MODELS, key=lambda k: held[k]["spearman"])
    fitted = surrogate.fit(frame, dims, kind=kind)
    best, where = surrogate.best_of(fitted, SPACES[args.space], frame)
    fitted.facts = {"metric": args.landscape_metric, "model": kind, "held_out": held, "best": best,
                    "best_config": where, "seed_sd_by_step": list(fitted.sd), "seed_rho_by_step": list(fitted.rho),
                    "fractions": list(fitted.fractions)}  # fmt: skip
    return fitted


def landscape_facts(model, out: Path) -> float | None:
    """On a landscape: the surrogate's facts printed and written to landscape-fit.json; returns the landscape's
    best (None on the invented surface)."""
    facts = getattr(model.surface, "facts", None)
    if not facts:
        return None
    import json

    from trainer.runtime import atomic_write_json

    atomic_write_json(out / "landscape-fit.json", facts)
    for kind, q in facts["held_out"].items():
        print(
            f"surrogate ({kind}{', used' if kind == facts['model'] else ''}): held-out over {q['configs']} configs, "
            f"Spearman {q['spearman']:.2f}, Kendall {q['kendall']:.2f}, RMSE {q['rmse']:.4f} (seed noise of a "
            f"config's mean {q['noise_of_mean']:.4f}, spread of the means {q['spread']:.4f})",
            flush=True,
        )
    where = json.dumps(facts["best_config"], default=str)
    print(f"landscape's best true {facts['metric']}: {facts['best']:.4f} at {where}", flush=True)
    return facts["best"]


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
    best = landscape_facts(model, out)
    with sim_ray(args.gpus):
        for rep in range(args.reps):
            rep_model = model.of_rep(rep)
            for strategy in strategies:
                asha = STRATEGIES[strategy]["scheduler"] != "none" or strategy == TOP_K
                trials = args.trials * args.asha_trials if asha else args.trials
                run = run_once(SPACES[args.space], strategy, rep=rep, gpus=args.gpus, trials=trials,
                               model=rep_model, root=out / "runs")  # fmt: skip
                if _stopped(run):
                    _search_tables(out, curves, args, best)
                    return run.code or 130
                curves.append(analysis.curve(run))
                runs.append(analysis.overhead(run, rep_model) | {"rep": rep})
                write_csv(pd.concat(curves, ignore_index=True), out / "curves.csv")
                write_csv(pd.DataFrame(runs), out / "runs.csv")
                found = curves[-1]["incumbent_true_fid"].iloc[-1]
                print(f"  rep {rep} {strategy:22s} true FID {found:9.4f}  {run.wall_s:6.1f} s", flush=True)
    summary = _search_tables(out, curves, args, best)
    if "random" in strategies:
        for line in goals(summary, best is not None):
            print(line)
    return 0


def goals(summary: pd.DataFrame, regret: bool) -> list[str]:
    """Each strategy against random search: the share of random's GPU-hours to reach its whole-budget result
    (goal GOAL_SHARE), and with a landscape the median regret at random's budget against half of random's."""
    lines = []
    rand = summary[summary["strategy"] == "random"].iloc[0]
    for _, row in summary[summary["strategy"] != "random"].iterrows():
        share = float(row["budget_share_to_random_best"])
        text = f"{row['strategy']}: reaches random's result in {share:.2f} of its GPU-hours (goal <= {GOAL_SHARE:.2f}"
        text += f", {'met' if share <= GOAL_SHARE else 'not met'})"
        if regret:
            theirs, randoms = row["regret_at_random_budget"], rand["regret_at_random_budget"]
            ratio = theirs / randoms if randoms > 0 else math.inf
            text += f"; regret at random's budget {ratio:.2f} of random's (goal <= 0.5, "
            text += f"{'met' if ratio <= 0.5 else 'not met'})"
        lines.append(text)
    return lines


def _search_tables(out: Path, curves: list, args, best: float | None = None) -> pd.DataFrame:
    """search.csv and search.png from the runs so far, printed; the summary (empty before any run)."""
    if not curves:
        return pd.DataFrame(columns=["strategy"])
    frame = pd.concat(curves, ignore_index=True)
    summary = analysis.search_summary(frame, best)
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
