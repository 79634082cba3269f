"""Ray and Tune for a sweep or a confirmation: joining or starting Ray, the preflight, the trainable with its
resources, Tune's run settings and the fit with stop signals handled. Used by ``sweep.driver`` and
``sweep.confirm`` alike."""

from __future__ import annotations

import contextlib
from pathlib import Path

import ray
from ray import tune

from sweep import signals
from sweep.adapters import run_config_of
from sweep.cluster import check_fits, check_nodes, connect
from sweep.options import RayOptions
from sweep.tables import SweepTable
from sweep.trainable import trainable
from trainer.runtime import removed_if_left_empty


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


def trial_resources(options: RayOptions) -> dict:
    gpus = options.gpus_per_trial
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    return {"cpu": options.cpus_per_trial, "gpu": gpus}


def trial_fn(base: dict, folder: Path, resources: dict):
    """The trainable with this sweep's base config and its folder (for its finals), on ``resources`` per trial."""
    return tune.with_resources(
        tune.with_parameters(trainable, base=base, folder=str(folder)),
        {"cpu": resources["cpu"], "gpu": resources["gpu"]},
    )


def run_config(experiment: Path, callbacks: list, max_failures: int) -> tune.RunConfig:
    """Tune's run settings, its experiment in ``experiment`` (``sweep.folder.SweepFolder``'s). ``max_failures``:
    restarts of a trial whose worker, actor or node died (its own failures end it with a status instead, and are
    never retried)."""
    return tune.RunConfig(
        name=experiment.name,
        storage_path=str(experiment.parent),
        verbose=0,
        callbacks=callbacks,
        sync_config=tune.SyncConfig(sync_artifacts=True),  # samples.png, result.json per trial
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
    )


def preflight(options: RayOptions, cfg, results_dir: Path) -> dict:
    """Inside Ray, before anything is written: a trial fits some node and, on a cluster, every node checks out
    (``cfg``: the sweep's base TrainConfig, whose data and FID cache every node needs)."""
    resources = trial_resources(options)
    check_fits(resources["cpu"], resources["gpu"])
    if options.address:
        with removed_if_left_empty(results_dir):
            check_nodes(cfg, results_dir)
    return resources


def with_callbacks(tuner, callbacks: list) -> None:
    """A restored Tuner runs with the callbacks pickled by the first driver; this one's replace them (its table,
    its --quiet, and the signal handling of this version)."""
    run_config_of(tuner).callbacks = callbacks


def fit(tuner, table: SweepTable) -> None:
    """Tuner.fit with stop signals handled (see sweep.signals); a stopped run's running rows become interrupted."""
    try:
        tuner.fit()
    finally:
        signals.fit_returned()  # the summary is this thread's now, unless the stop deadline took it
    if signals.stopping():
        table.interrupt_running()
