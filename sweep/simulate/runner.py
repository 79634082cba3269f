"""One simulated sweep through the real driver (``sweep.driver.run_sweep``: Ray Tune, Optuna, the scheduler,
the callbacks and tables), with the simulated trial on simulated GPUs, and the Ray all runs share."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from sweep.folder import SweepFolder
from sweep.options import RayOptions, SweepOptions
from sweep.simulate.model import SimModel

SIM_GPU = "sim_gpu"  # the Ray custom resource a simulated trial holds one of
CPU_PER_TRIAL = 0.01  # a simulated trial sleeps: it holds a simulated GPU, hardly a core
SWEEP = "sim"  # each run's sweep name, in a results folder of its own

# strategy -> the search settings it changes (the rest are sweep.run's defaults). ASHA strategies run
# ASHA_TRIALS times the trials: they stop most early, and each strategy is read against GPU-hours.
STRATEGIES = {
    "random": {"sampler": "random", "scheduler": "none", "intermediate": True},
    "tpe": {"sampler": "tpe", "scheduler": "none", "intermediate": True},
    "tpe+asha-final-only": {"sampler": "tpe", "scheduler": "asha", "intermediate": False},
    "tpe+asha": {"sampler": "tpe", "scheduler": "asha", "intermediate": True},
    "tpe-group+asha": {"sampler": "tpe-group", "scheduler": "asha", "intermediate": True},
    # BOHB's recipe (a Parzen-estimator model with Hyperband) from maintained parts: Optuna's TPE, told the
    # intermediate FIDs, and Ray Tune's asynchronous Hyperband (ASHA in 3 brackets)
    "tpe+hyperband": {"sampler": "tpe", "scheduler": "hyperband", "intermediate": True},
    # arXiv 2307.15422's baseline: every config to the first evaluation, then the best K to the end
    "top-k": {"sampler": "random", "scheduler": "none", "intermediate": True},
}
TOP_K = "top-k"
ASHA_TRIALS = 2  # strategies that stop trials early (ASHA, Hyperband, top-k's first phase) run this many times
# --trials; top-k then trains TOP_K_SHARE of --trials to the end


@contextlib.contextmanager
def sim_ray(gpus: int):
    """A local Ray of the simulation's own with ``gpus`` simulated GPUs (never another running instance). A Ray
    this process already started (a test session's) is used as it is, if it has that many."""
    import ray

    if ray.is_initialized():
        have = ray.cluster_resources().get(SIM_GPU, 0)
        if have < gpus:
            raise RuntimeError(f"this process's Ray has {have:g} {SIM_GPU}, fewer than the {gpus} asked for")
        yield
        return
    from sweep import auth

    auth.for_local_ray()  # locked with a token like every Ray the project starts
    ray.init(
        address="local",
        resources={SIM_GPU: gpus},
        include_dashboard=False,
        log_to_driver=False,
        logging_level="warning",
    )
    try:
        yield
    finally:
        ray.shutdown()


def trial_factory(model: SimModel, log: Path):
    """``make_trial`` for the driver: the simulated trainable on one simulated GPU."""

    def make(base: dict, folder: Path, resources: dict):
        from ray import tune

        from sweep.simulate.trial import sim_trainable

        fn = tune.with_parameters(sim_trainable, model=model, log=str(log))
        return tune.with_resources(fn, {"cpu": CPU_PER_TRIAL, "gpu": 0, SIM_GPU: 1})

    return make


class ResultTimer:
    """Driver CPU seconds spent handling reported results, and how many: wraps Tune's result handler
    (``sweep.adapters.result_handler``) for the block. CPU of the handling thread, so trials' processes and
    the driver's other threads never count."""

    def __init__(self):
        self.cpu_s, self.count = 0.0, 0

    @contextlib.contextmanager
    def timing(self):
        from sweep.adapters import result_handler

        owner, name = result_handler()
        original = getattr(owner, name)

        def timed(controller, *args, **kwargs):
            start = time.thread_time()
            try:
                return original(controller, *args, **kwargs)
            finally:
                self.cpu_s += time.thread_time() - start
                self.count += 1

        setattr(owner, name, timed)
        try:
            yield self
        finally:
            setattr(owner, name, original)


@dataclass(frozen=True)
class Run:
    """What one simulated sweep was and what the driver spent on it."""

    strategy: str
    rep: int
    gpus: int
    trials: int
    folder: Path  # the sweep's folder (sweep.folder.SweepFolder: its tables, the simulation's log, driver.log)
    wall_s: float  # the driver's fit, start to summary
    driver_cpu_s: float  # CPU seconds of the driver process (every thread) over the same span
    code: int  # run_sweep's exit code
    result_cpu_s: float = 0.0  # of driver_cpu_s: in Tune's handling of reported results
    results_handled: int = 0  # results the driver handled
    log_path: Path | None = None  # the simulation's log (default: the sweep folder's)

    @property
    def log(self) -> Path:
        return self.log_path or SweepFolder(self.folder).sim_log


TOP_K_SHARE = 0.25


def run_once(space, strategy: str, *, rep: int, gpus: int, trials: int, model: SimModel, root: Path) -> Run:
    """One sweep of ``trials`` on ``gpus`` simulated GPUs, seeded by ``rep``, in ``root/<strategy>-r<rep>``.

    Each run has a results folder of its own, so the merged leaderboard it rewrites holds its rows only.
    ``top-k`` is two sweeps (``run_top_k``) read as one.
    """
    name = f"{strategy}-g{gpus}-n{trials}-r{rep}"
    if strategy == TOP_K:
        return run_top_k(space, rep=rep, gpus=gpus, trials=trials, model=model, root=root / name)
    return _sweep(space, strategy, rep=rep, gpus=gpus, trials=trials, model=model, folder=root / name / SWEEP)


def run_top_k(space, *, rep: int, gpus: int, trials: int, model: SimModel, root: Path) -> Run:
    """arXiv 2307.15422's baseline as two sweeps of the real driver: ``trials`` random configs (the space's
    baselines first) each trained to the first evaluation step, whose FID is its result; then the K =
    ``TOP_K_SHARE`` x ``trials`` / ``ASHA_TRIALS`` configs with the lowest of those trained on to the end,
    each continuing from its first rung (its cost counted once). One log, so the analysis reads one search.
    """
    import dataclasses

    from sweep.simulate.analysis import read_log

    first = model.eval_steps()[0]
    log = SweepFolder(root).sim_log  # one log for both sweeps, in their results folder, named as a sweep's
    phase1 = _sweep(space, TOP_K, rep=rep, gpus=gpus, trials=trials,
                    model=dataclasses.replace(model, until=first), folder=root / "first-rung", log=log)  # fmt: skip
    if phase1.code:
        return phase1
    ends = read_log(log)
    params = _params_of(root / "first-rung", model.keys)
    keep = max(1, round(TOP_K_SHARE * trials / ASHA_TRIALS))
    best = ends.sort_values("fid").head(keep)["trial"].tolist()
    points = [params[t] for t in best if t in params]
    names = [space.baseline_of(p) or f"top{i + 1}" for i, p in enumerate(points)]
    top = dataclasses.replace(space, points=points, point_names=names)
    phase2 = _sweep(top, TOP_K, rep=rep, gpus=gpus, trials=len(points),
                    model=dataclasses.replace(model, start=first), folder=root / SWEEP, log=log)  # fmt: skip
    return dataclasses.replace(
        phase2,
        trials=trials,
        wall_s=phase1.wall_s + phase2.wall_s,
        driver_cpu_s=phase1.driver_cpu_s + phase2.driver_cpu_s,
        result_cpu_s=phase1.result_cpu_s + phase2.result_cpu_s,
        results_handled=phase1.results_handled + phase2.results_handled,
        log_path=log,
    )


def _params_of(folder: Path, keys) -> dict[str, dict]:
    """trial id -> its values of ``keys`` (the searched ones), from a sweep's trials.csv."""
    from sweep.simulate.landscape import searched
    from sweep.tables import read_table

    table = read_table(SweepFolder(folder).trials_csv)
    out = {}
    for _, row in table.iterrows():
        out[row["trial_id"]] = searched(row, keys)
    return out


def _sweep(space, strategy, *, rep, gpus, trials, model, folder: Path, log: Path | None = None) -> Run:
    from sweep.driver import run_sweep

    folder.mkdir(parents=True)
    options = SweepOptions(
        ray=RayOptions(quiet=True, max_concurrent=gpus, cpus_per_trial=CPU_PER_TRIAL, gpus_per_trial=0.0)
    )
    from sweep.run import OLD_SWEEP_SETTINGS  # sweep.run's defaults of the settings it saves

    settings = {**OLD_SWEEP_SETTINGS, "trials": trials, "seed": rep, "max_failures": 0, **STRATEGIES[strategy]}
    files = SweepFolder(folder)
    log = log or files.sim_log
    make = trial_factory(model, log)
    timer = ResultTimer()
    with open(files.driver_log, "w") as out, contextlib.redirect_stdout(out), timer.timing():
        wall, cpu = time.perf_counter(), time.process_time()
        code = run_sweep(options, folder, space, model.base["preset"], dict(model.base), settings, make_trial=make)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Run(strategy, rep, gpus, trials, folder, wall, cpu, code, timer.cpu_s, timer.count, log)
