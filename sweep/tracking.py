"""``--mlflow``: a sweep as one MLflow parent run, each trial a child run under it.

Ray Tune's own MLflow callback makes one flat run per trial; here the sweep is
a parent run (its settings as params) and every trial a child run (tag
``mlflow.parentRunId``, which MLflow's UI nests) with its config as params,
intermediate FIDs as metrics at their step, final FIDs and costs, tags for
status, seed and config hash, and its sample grid as an artifact. A resumed
sweep finds its runs again by tag and goes on logging into them.

The default store is a SQLite file in the sweep folder (``mlflow.db``; artifacts
in ``mlartifacts/`` beside it), so ``mlflow ui --backend-store-uri
sqlite:///<sweep>/mlflow.db`` shows the sweep with no server. Tracking never
breaks a sweep: an error is one warning, and the trials go on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ray.tune import Callback

from sweep import signals
from sweep.folder import SweepFolder, TrialFolder
from sweep.trainable import row_of

EXPERIMENT = "meanflow-sweep"
FINAL_METRICS_SKIP = ("versions", "gpu", "fid_kind", "config_hash", "status", "error")
TUNE_KEYS = ("time_", "training_iteration")  # Tune's own bookkeeping in a result


def final_metrics(result: dict, skip=(), tune_keys=TUNE_KEYS) -> dict[str, float]:
    """A trial's last result as numbers to chart: every number but NaN, except the words (``FINAL_METRICS_SKIP``,
    ``skip``) and Tune's keys (``tune_keys``: prefixes). MLflow and W&B log these."""
    out = {}
    for key, value in result.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        if numeric and key not in FINAL_METRICS_SKIP and key not in skip and not key.startswith(tune_keys):
            out[key] = float(value)
    return out


def default_uri(folder: Path) -> str:
    return f"sqlite:///{SweepFolder(folder).mlflow_db}"


def check_available() -> str | None:
    """Why --mlflow cannot run here (MLflow not installed), or None."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return "--mlflow needs MLflow, an optional extra: pip install -e '.[mlflow]'"
    return None


class MlflowTracking(Callback):
    """Logs the sweep and its trials to MLflow (see the module docstring)."""

    def __init__(self, uri: str, sweep: str, folder: Path, settings: dict, configs):
        self.uri, self.sweep, self.folder, self.settings = uri, sweep, Path(folder), settings
        self.configs, self.base = configs, configs.base  # sweep.configs.Configs: each trial's config, built once
        self.client = None
        self.parent: str | None = None
        self.children: dict[str, str] = {}
        self.grids: list[tuple[str, Path]] = []  # sample grids not synced to storage yet when their trial ended
        self.warned = False

    # ------------------------------------------------------------ plumbing
    def _guard(self, what: str, fn, *args) -> None:
        """Runs one logging step; an error is one warning for the whole sweep, never a failed sweep."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001  (tracking is a side channel: the sweep goes on)
            if not self.warned:
                print(f"warning: MLflow {what} failed ({type(e).__name__}: {e}); the sweep goes on", file=sys.stderr)
                self.warned = True

    def _runs(self, **tags) -> list:
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        return self.client.search_runs([self.experiment], filter_string=query, max_results=10000)

    # ------------------------------------------------------------ Tune's hooks
    def setup(self, **info):
        self._guard("setup", self._setup)

    def _setup(self) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(EXPERIMENT)
        artifacts = SweepFolder(self.folder).mlartifacts.as_uri() if self.uri.startswith("sqlite:") else None
        self.experiment = found.experiment_id if found else self.client.create_experiment(EXPERIMENT, artifacts)
        runs = self._runs(**{"meanflow.sweep": self.sweep, "meanflow.role": "sweep"})
        if runs:  # a resumed sweep: its parent run and the trials' child runs
            self.parent = runs[0].info.run_id
            for run in self._runs(**{"mlflow.parentRunId": self.parent}):
                self.children[run.data.tags.get("meanflow.trial_id", "")] = run.info.run_id
            self.client.update_run(self.parent, status="RUNNING")
            return
        run = self.client.create_run(
            self.experiment, run_name=self.sweep, tags={"meanflow.sweep": self.sweep, "meanflow.role": "sweep"}
        )
        self.parent = run.info.run_id
        for key, value in {**self.settings, **{f"base.{k}": v for k, v in self.base.items()}}.items():
            self.client.log_param(self.parent, key, value)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._guard("trial start", self._start, trial)

    def _start(self, trial) -> None:
        from sweep.trainable import flat_params

        row = row_of(trial)  # a lost hand-out run again continues its first run
        if not self.parent or row in self.children:
            return
        params = flat_params(trial.config)
        tags = {"mlflow.parentRunId": self.parent, "meanflow.trial_id": row, "meanflow.sweep": self.sweep}
        try:
            tags["seed"] = str(self.configs.of(params).seed)
        except ValueError:  # a bad config: the trial fails with this message itself
            pass
        run = self.client.create_run(self.experiment, run_name=row, tags=tags)
        self.children[row] = run.info.run_id
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, value)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run = self.children.get(row_of(trial))
        if "intermediate_fid" in result and run is not None:
            fid, step = result["intermediate_fid"], result["step"]
            self._guard("metric", lambda: self.client.log_metric(run, "intermediate_fid", fid, step=step))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._guard("trial end", self._end, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._guard("trial end", self._end, trial)

    def _end(self, trial) -> None:
        run = self.children.get(row_of(trial))
        if run is None:
            return
        last = trial.last_result or {}
        if "final_fid" not in last and signals.stopping():  # interrupted: continues on --resume
            self.client.set_tag(run, "status", "interrupted")
            self.client.set_terminated(run, status="KILLED")
            return
        status = last.get("status", "completed" if "final_fid" in last else "error")
        self.client.set_tag(run, "status", status)
        for key in ("config_hash", "fid_kind", "gpu"):
            if last.get(key) is not None:
                self.client.set_tag(run, key, str(last[key]))
        for key, value in final_metrics(last).items():
            self.client.log_metric(run, key, value, step=int(last.get("step") or 0))
        self.grids.append((run, TrialFolder(trial.path).samples_png))  # Tune syncs it after the trial ends
        self._log_grids()
        self.client.set_terminated(run, status="FINISHED" if status == "completed" else "FAILED")

    def _log_grids(self) -> None:
        waiting = []
        for run, grid in self.grids:
            if grid.is_file():
                self.client.log_artifact(run, str(grid))
            else:
                waiting.append((run, grid))
        self.grids = waiting

    def on_experiment_end(self, trials, **info):
        self._guard("artifacts", self._log_grids)
        if self.parent:
            status = "KILLED" if signals.stopping() else "FINISHED"
            self._guard("sweep end", self.client.set_terminated, self.parent, status)
