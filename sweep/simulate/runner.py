"""One simulated sweep through the real driver (``sweep.driver.run_sweep``: Ray Tune, Optuna, the scheduler,
the callbacks and tables), with the simulated trial on simulated GPUs, and the Ray all runs share."""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

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
}
ASHA_TRIALS = 2


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
    folder: Path  # the sweep's folder (trials.csv, sim_log.jsonl, driver.log)
    wall_s: float  # the driver's fit, start to summary
    driver_cpu_s: float  # CPU seconds of the driver process (every thread) over the same span
    code: int  # run_sweep's exit code
    result_cpu_s: float = 0.0  # of driver_cpu_s: in Tune's handling of reported results
    results_handled: int = 0  # results the driver handled

    @property
    def log(self) -> Path:
        return self.folder / "sim_log.jsonl"


def run_once(space, strategy: str, *, rep: int, gpus: int, trials: int, model: SimModel, root: Path) -> Run:
    """One sweep of ``trials`` on ``gpus`` simulated GPUs, seeded by ``rep``, in ``root/<strategy>-r<rep>``.

    Each run has a results folder of its own, so the merged leaderboard it rewrites holds its rows only.
    """
    from sweep.driver import run_sweep

    folder = root / f"{strategy}-g{gpus}-n{trials}-r{rep}" / SWEEP
    folder.mkdir(parents=True)
    args = argparse.Namespace(
        address=None,
        resume=False,
        quiet=True,
        max_concurrent=gpus,
        confirm_top=0,
        cpus_per_trial=CPU_PER_TRIAL,
        gpus_per_trial=0.0,
    )
    from sweep.run import OLD_SWEEP_SETTINGS  # sweep.run's defaults of the settings it saves

    settings = {**OLD_SWEEP_SETTINGS, "trials": trials, "seed": rep, "max_failures": 0, **STRATEGIES[strategy]}
    make = trial_factory(model, folder / "sim_log.jsonl")
    timer = ResultTimer()
    with open(folder / "driver.log", "w") as out, contextlib.redirect_stdout(out), timer.timing():
        wall, cpu = time.perf_counter(), time.process_time()
        code = run_sweep(args, folder, space, model.base["preset"], dict(model.base), settings, make_trial=make)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Run(strategy, rep, gpus, trials, folder, wall, cpu, code, timer.cpu_s, timer.count)
