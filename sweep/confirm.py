"""Confirm a sweep's best configs on fresh seeds: ``python -m sweep.confirm --name SWEEP --top K --seeds S``.

Re-runs the K configs with the lowest mean final FID and every baseline of the
sweep's space on S fresh seeds, the same seeds for all of them (paired), and
writes ``<sweep>/confirm.csv``: per config n, mean FID, std, a 95% t-interval,
and the paired difference to MeanFlow (mean and 95% interval), a paired t-test
with Holm's correction over every config compared, and a verdict (better,
worse, no difference). The verdict columns reach the sweep's leaderboard.csv
and the merged one (``confirm_*`` and ``claim``). Also ``sweep.run ...
--confirm-top K --confirm-seeds S`` after the search.

Resume: rerun the same command; finished and failed seeds are kept
(``confirm_trials.csv``), interrupted ones run again. A failed seed is
reported in ``n_failed`` / ``failed_seeds``, never dropped silently.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pandas as pd

from sweep import signals
from sweep.flags import add_trial_flags, ray_options, trial_flag_problem, wandb_problem
from sweep.columns import CONFIG, CONFIRM_COLUMNS, FAILED, row_params
from sweep.configs import Configs
from sweep.folder import ResultsFolder, SweepFolder
from sweep.options import RayOptions
from sweep.tables import SweepTable, load_sweep_json, merge_leaderboards, read_table, write_board, write_csv
from sweep.stats import LEVEL, holm, paired_test, t_interval, verdict
from trainer.cli import Parser, usage_error
from trainer.runtime import atomic_write_json

REFERENCE = "meanflow"
NFE = "final_fid_nfe"  # a run's FID at k sampler steps: final_fid_nfe<k>


def configs_to_confirm(folder: Path, space, configs: Configs, top: int, objectives=()) -> list[dict]:
    """Every baseline of a sweep's space, the named ``objectives`` and the sweep's K best other configs (by mean
    final FID over their seeds)."""
    out: dict[str, dict] = {}
    named = {name: {"objective": name} for name in objectives}
    for name, params in {**baseline_params(space), **named}.items():
        out.setdefault(configs.hash_of(params), {"label": name, "baseline": name, "params": params})
    if REFERENCE not in {c["baseline"] for c in out.values()}:  # the reference is always confirmed
        params = {"objective": REFERENCE}
        out.setdefault(configs.hash_of(params), {"label": REFERENCE, "baseline": REFERENCE, "params": params})
    trials = read_table(SweepFolder(folder).trials_csv)
    if not trials.empty and "final_fid" in trials:
        done = trials[trials["status"] == "completed"]
        params = [{k: v for k, v in row_params(r).items() if k != "seed"} for r in done.to_dict("records")]
        hashes = pd.Series([configs.hash_of(p) for p in params], index=done.index)
        means = done["final_fid"].groupby(hashes).mean().sort_values(kind="stable")
        searched = [h for h in means.index if h not in out]  # the baselines are confirmed anyway
        for rank, h in enumerate(searched[:top], 1):
            out[h] = {"label": f"top{rank}", "baseline": None, "params": params[list(hashes).index(h)]}
    return [{"config_hash": h, **c} for h, c in out.items()]


def baseline_params(space) -> dict[str, dict]:
    """Each baseline point of a space as the full params its first trial ran with (suggested + fixed keys)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = {}
    for name, point in zip(space.point_names, space.points):
        study = optuna.create_study()
        study.enqueue_trial(point)
        trial = study.ask()
        fixed = space.define(trial)
        out[name] = {**trial.params, **fixed}
    return out


def check_plan(plan) -> None:
    """A confirmation plan read back from confirm.json holds what load_plan wrote, each value of its type;
    raises ValueError (KeyError or TypeError for a missing field) otherwise (``load_plan`` names the file)."""
    from trainer.config import SEED_MAX

    def count(v, low, high):
        return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high

    configs = plan["configs"]
    good = (
        count(plan["top"], 0, 10**6)
        and isinstance(plan.get("objectives", []), list)
        and all(isinstance(o, str) for o in plan.get("objectives", []))
        and isinstance(plan["seeds"], list)
        and len(plan["seeds"]) >= 2
        and all(count(seed, 0, SEED_MAX) for seed in plan["seeds"])
        and isinstance(plan["level"], float)
        and 0 < plan["level"] < 1
        and isinstance(configs, list)
        and len(configs) > 0
        and all(
            isinstance(c["config_hash"], str)
            and isinstance(c["label"], str)
            and isinstance(c["params"], dict)
            and (c["baseline"] is None or isinstance(c["baseline"], str))
            for c in configs
        )
    )
    if not good:
        raise ValueError("the plan holds a value of the wrong type or range")


def load_plan(folder: Path, space, configs: Configs, top: int, seeds: int, objectives=()) -> dict:
    """The confirmation's configs and seeds: made once, then read back on resume (confirm.json)."""
    files = SweepFolder(folder)
    path = files.confirm_json
    others = f"{files.confirm_trials_csv.name} and {files.confirm_csv.name}"  # removed with it, it starts anew
    if path.is_file():
        try:
            plan = json.loads(path.read_text())
            check_plan(plan)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is damaged: remove it, {others} to start the confirmation anew") from None
        asked = sorted(objectives)
        if (plan["top"], len(plan["seeds"]), plan.get("objectives", [])) != (top, seeds, asked):
            held = ",".join(plan.get("objectives", [])) or "none"
            raise ValueError(
                f"{path} holds a confirmation with --top {plan['top']} --seeds {len(plan['seeds'])} "
                f"--objectives {held}; "
                f"rerun with those to resume it, or remove {path.name}, {others}"
            )
        return plan
    used = read_table(files.trials_csv).get(CONFIG + "seed", pd.Series(dtype=float))
    used = pd.to_numeric(used, errors="coerce")
    first = int(used.max()) + 1 if used.notna().any() else configs.of({}).seed + 1
    plan = {
        "top": top,
        "objectives": sorted(objectives),
        "seeds": list(range(first, first + seeds)),  # fresh: none of them ran in the search
        "configs": configs_to_confirm(folder, space, configs, top, objectives),
        "level": LEVEL,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_json(path, plan)
    return plan


def summarize_confirmation(rows: list[dict], plan: dict) -> pd.DataFrame:
    """One row per config: its interval over seeds and its paired comparison with MeanFlow, for the final FID and,
    with the suffix ``_nfe<k>``, for every extra step count the runs scored (``final_fid_nfe<k>``)."""
    seeds, level = plan["seeds"], plan["level"]
    by_hash: dict[str, dict[int, dict]] = {}
    for row in rows:
        by_hash.setdefault(row.get("config_hash"), {})[int(row[CONFIG + "seed"])] = row
    ref = next(c for c in plan["configs"] if c["baseline"] == REFERENCE)
    out = []
    for c in plan["configs"]:
        runs = by_hash.get(c["config_hash"], {})
        failed = [s for s in seeds if s in runs and runs[s]["status"] in FAILED]
        kinds = {r.get("fid_kind") for r in runs.values() if r.get("fid_kind")}
        out.append(
            {
                "label": c["label"],
                "baseline": c["baseline"],
                "config_hash": c["config_hash"],
                "fid_kind": ";".join(sorted(kinds)),
                "n_failed": len(failed),
                "failed_seeds": ";".join(map(str, failed)),
                "seeds": ";".join(map(str, seeds)),
            }
        )
    nfe = sorted({int(k[len(NFE) :]) for r in rows for k in r if k.startswith(NFE) and k[len(NFE) :].isdigit()})
    compared = 0
    for metric, suffix in [("final_fid", ""), *((f"{NFE}{k}", f"_nfe{k}") for k in nfe)]:

        def fids(h):
            runs = by_hash.get(h, {})
            done = [runs.get(s) if s in runs and runs[s]["status"] == "completed" else None for s in seeds]
            return [None if r is None or _missing(r.get(metric)) else float(r[metric]) for r in done]

        ref_fids = fids(ref["config_hash"])
        per_config = []
        for c, r in zip(plan["configs"], out):
            values = fids(c["config_hash"])
            interval, paired = t_interval(values, level), paired_test(values, ref_fids, level)
            per_config.append((interval, paired, math.nan if c is ref else paired.p_value))
        adjusted = holm([p for _, _, p in per_config])
        compared = max(compared, sum(not math.isnan(p) for p in adjusted))
        for c, r, (interval, paired, _), p in zip(plan["configs"], out, per_config, adjusted):
            r.update(
                {
                    f"n{suffix}": interval.n,
                    f"mean_fid{suffix}": interval.mean,
                    f"std_fid{suffix}": interval.std,
                    f"ci_low{suffix}": interval.low,
                    f"ci_high{suffix}": interval.high,
                    f"delta_mean{suffix}": paired.diff.mean,
                    f"delta_ci_low{suffix}": paired.diff.low,
                    f"delta_ci_high{suffix}": paired.diff.high,
                    f"p_holm{suffix}": p,
                    f"verdict{suffix}": "reference" if c is ref else verdict(paired.diff.mean, p, level),
                }
            )
    for r in out:
        r["level"] = level
        r["test"] = f"paired t-test vs {REFERENCE} over shared seeds, Holm over {compared} per step count"
    return pd.DataFrame(out).sort_values("mean_fid", kind="stable").reset_index(drop=True)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def rerun_line(folder: Path) -> str:
    """The last line of an interrupted confirmation (printed by the driver or by the stop deadline)."""
    return f"interrupted: rerun the same command to finish the confirmation of {folder.name}"


def ended_runs(table: SweepTable) -> set[tuple[str, int]]:
    """(config hash, seed) of every confirmation run that completed or failed: never run again."""
    return {
        (r.get("config_hash"), int(r[CONFIG + "seed"]))
        for r in table.rows.values()
        if r["status"] in ("completed", *FAILED)
    }


def confirm(options: RayOptions, folder: Path, top: int, seeds: int, objectives=(), wandb: str | None = None) -> int:
    """Runs (or resumes) a confirmation, on the Ray and with the trial placement ``options`` give; 0 when every
    seed ended, 128 + signal when stopped (130 Ctrl-C, 143 SIGTERM): interrupted runs run again when the same
    command is rerun. ``wandb``: the W&B project its runs join, in the sweep's group (None: no W&B)."""
    from ray import tune

    from search_spaces import SPACES
    from sweep.tuning import fit, preflight, ray_running, run_config, trial_fn
    from sweep.progress import RecordsCallback
    from sweep.trainable import JOB
    from sweep.wandb_tracking import tracker

    files = SweepFolder(folder)
    saved = load_sweep_json(folder)
    space, base = SPACES[saved["space"]], saved["base"]
    configs = Configs(base)
    plan = load_plan(folder, space, configs, top, seeds, objectives)
    table = SweepTable(folder.parent, folder.name, space.name, name="confirm")
    table.load()
    logger = tracker(wandb, folder, configs, space, job_type="confirm")
    ended = ended_runs(table)
    jobs = [
        {**c["params"], "seed": s} for c in plan["configs"] for s in plan["seeds"] if (c["config_hash"], s) not in ended
    ]
    total = len(plan["configs"]) * len(plan["seeds"])
    print(
        f"confirm {folder.name}: {len(plan['configs'])} configs x seeds {plan['seeds']}, "
        f"{total - len(jobs)} of {total} runs already ended",
        flush=True,
    )
    if jobs:
        with ray_running(options.address):
            resources = preflight(options, configs.of({}), folder.parent)
            fn = trial_fn(base, folder, resources)
            callback = RecordsCallback(table, space, total, configs, quiet=options.quiet)

            def on_deadline() -> int:  # Ray did not stop in time after a signal: what is on disk stays
                table.interrupt_running()
                print(rerun_line(folder))
                return signals.exit_code()

            tuner = tune.Tuner(
                fn,
                param_space={JOB: tune.grid_search(jobs)},
                tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=options.max_concurrent),
                run_config=run_config(
                    files.confirm_run(time.strftime("%Y%m%d-%H%M%S")),
                    [signals.GracefulStop(on_deadline), callback, *([logger] if logger else [])],
                    options.max_failures,
                ),
            )
            fit(tuner, table)
    table.load()
    summary = summarize_confirmation(list(table.rows.values()), plan)
    write_csv(summary, files.confirm_csv)
    board = write_board(folder)
    merge_leaderboards(folder.parent)
    if logger:
        logger.summarize({"leaderboard": board, "confirmation": summary})
    print(summary[["label", *CONFIRM_COLUMNS]].to_string(index=False))
    print(f"{summary['test'].iloc[0]}, level {plan['level']}; table: {files.confirm_csv}")
    if len(ended_runs(table)) < total:
        print(rerun_line(folder), flush=True)
        return signals.exit_code() or 130
    return 0


def parse(argv=None):
    p = Parser(prog="python -m sweep.confirm", description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="the sweep to confirm")
    p.add_argument("--top", type=int, default=3, help="configs to confirm besides the space's baselines (0: none)")
    p.add_argument(
        "--objectives",
        default="",
        help="named objectives to confirm too, comma-separated, or all (e.g. for a reference table)",
    )
    p.add_argument("--seeds", type=int, default=5, help="fresh seeds per config (the same for every config)")
    add_trial_flags(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    return signals.stoppable(lambda: run(args), "interrupted: rerun the same command to resume the confirmation")


def run(args) -> int:
    files = ResultsFolder(Path(args.results_dir).absolute()).sweep(args.name)
    folder = files.path
    if not files.sweep_json.is_file():
        return usage_error(f"--name {args.name!r}: there is no sweep {folder}")
    if args.top < 0:
        return usage_error(f"--top {args.top} must be 0 or more")
    from trainer.objectives import OBJECTIVES

    objectives = list(OBJECTIVES) if args.objectives == "all" else [o for o in args.objectives.split(",") if o]
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        return usage_error(f"--objectives {unknown[0]!r} is not a named objective; known: all, {', '.join(OBJECTIVES)}")
    if args.seeds < 2:
        return usage_error(f"--seeds {args.seeds} must be at least 2 (an interval needs two seeds)")
    problem = trial_flag_problem(args) or wandb_problem(args.wandb, None, folder, resume=False)
    if problem:
        return usage_error(problem)
    try:
        signals.grace_seconds()
    except ValueError as e:
        return usage_error(str(e))
    from sweep.cluster import ClusterError

    try:
        return confirm(ray_options(args), folder, args.top, args.seeds, objectives, wandb=args.wandb)
    except (ValueError, ClusterError) as e:  # a damaged sweep.json or trials table is a ValueError too
        return usage_error(str(e))


if __name__ == "__main__":
    sys.exit(main())
