"""``--wandb [PROJECT]``: a sweep as a Weights & Biases group, a run per trial and one summary run.

Each trial is a run (job type ``trial``, or ``confirm`` for a confirmation's runs) in the group named after the
sweep: its config (the trainer keys of its ``config.`` columns), its intermediate FIDs at their steps, its final
FIDs at every step count, its costs and its sample grid at its last step. One more run (job type ``summary``)
holds the sweep's leaderboard as a W&B table, and a confirmation's table beside it.

Offline unless W&B is told otherwise: with no API key configured (``WANDB_API_KEY``, ``~/.netrc``, wandb's
settings file) the runs are written under ``<sweep>/wandb/`` and nothing leaves the machine until ``wandb sync
<sweep>/wandb`` (compute nodes rarely reach the internet). ``WANDB_MODE`` set in the environment wins.

A trial's run id is derived from the sweep and the trial's results row, so a trial restored after a node loss,
a SIGTERM or a requeue logs into *its* run again. Offline, wandb writes each start of a run into its own
folder and ``wandb sync`` appends them into that one run in order; ``ledger.json`` beside them keeps the last
step logged per run, so nothing is logged twice. Tracking never breaks a sweep: an error is one warning.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from ray.tune import Callback

from sweep import signals
from sweep.folder import SweepFolder, TrialFolder
from sweep.tracking import TUNE_KEYS, final_metrics
from sweep.trainable import flat_params, row_of
from trainer.runtime import atomic_write_json

DEFAULT_PROJECT = "meanflow-sweep"
BAD_PROJECT_CHARS = "/\\#?%:"  # what W&B refuses in a project name (wandb.sdk.wandb_settings, validate_project)
PROJECT_MAX = 128
# besides MLflow's: the step is the row's own, and more of Tune's bookkeeping (timesteps, iterations, node)
SKIPPED_TUNE_KEYS = (*TUNE_KEYS, "timesteps", "episodes", "iterations", "done", "node")


def check(project: str, folder: Path) -> str | None:
    """Why ``--wandb project`` cannot run for the sweep in ``folder`` (one sentence), or None."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        return "--wandb needs wandb, an optional extra: pip install -e '.[wandb]'"
    if not project or len(project) > PROJECT_MAX or any(c in BAD_PROJECT_CHARS for c in project):
        return (
            f"--wandb {project!r} is not a W&B project name: it takes 1 to {PROJECT_MAX} characters, none of "
            f"{' '.join(BAD_PROJECT_CHARS)}"
        )
    runs = SweepFolder(folder).wandb
    probe = next(p for p in (runs, *runs.parents) if p.exists())  # the folder, or where it will be made
    if not os.access(probe, os.W_OK | os.X_OK) or (runs.exists() and not runs.is_dir()):
        return f"--wandb: {runs} cannot be written by this user (W&B's offline runs go there)"
    ledger = SweepFolder(folder).wandb_ledger
    if ledger.exists() and read_ledger(ledger) is None:
        return (
            f"{ledger} is damaged (not a JSON record of runs and steps); move it away to go on logging (steps "
            "already logged may then be logged again)"
        )
    return None


def read_ledger(path: Path) -> dict | None:
    """The ledger (run id -> {"step": last step logged, "final": bool}); {} when there is none, None when it
    is damaged: truncated, garbage, or not that shape."""
    import json

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    good = isinstance(data, dict) and all(isinstance(v, dict) for v in data.values())
    good = good and all(
        isinstance(v.get("step", 0), int) and not isinstance(v.get("step"), bool) for v in data.values()
    )
    return data if good else None


def mode() -> str:
    """``WANDB_MODE`` when set; else online where an API key is configured, offline where none is."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if api_key_configured() else "offline"


def api_key_configured() -> bool:
    """Whether W&B has an API key here, read without the network (and never printed)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import wandb
        from wandb.sdk.lib import wbauth

        settings = wandb.setup().settings
        return bool(wbauth.read_netrc_auth(host=settings.base_url) or settings.api_key)
    except Exception:  # noqa: BLE001  (a malformed ~/.netrc or another wandb: no key we can use)
        return False


def sweep_token(name: str, created: str) -> str:
    """A short id prefix unique to one sweep (its name and creation time): run ids never collide across sweeps."""
    return hashlib.sha256(f"{name}|{created}".encode()).hexdigest()[:8]


class WandbTracking(Callback):
    """Logs a sweep's trials to W&B (see the module docstring); ``job_type``: ``trial`` or ``confirm``."""

    def __init__(self, project: str, folder: Path, sweep: dict, configs, space, job_type: str = "trial"):
        self.project, self.folder, self.configs, self.space = project, Path(folder), configs, space
        self.group, self.job_type = sweep["name"], job_type
        self.token = sweep_token(sweep["name"], str(sweep.get("created", "")))
        self.runs: dict[str, object] = {}  # row -> open wandb Run
        self.last_step: dict[str, int] = {}  # row -> the trial's training steps: where its final row goes
        self.pending: set[str] = set()  # runs whose last row is not committed yet (it waits for the finals)
        self.opened: dict[str, dict] = {}  # row -> how its run was opened (to open it again for a late grid)
        self.waiting: dict[str, tuple[Path, int, int]] = {}  # row -> (samples.png not synced yet, step, exit code)
        self.ledger_path = SweepFolder(folder).wandb_ledger
        self.ledger = read_ledger(self.ledger_path) or {}  # checked before Ray started (check)
        self.warned = False
        self.mode = None  # online or offline: decided at the first run this driver opens

    # ------------------------------------------------------------ plumbing
    def _guard(self, what: str, fn, *args) -> None:
        """Runs one logging step. The first error is one warning and ends W&B logging for this driver (an
        unreachable server would otherwise stall every trial's start by wandb's init timeout); never the sweep."""
        if self.warned:
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001  (tracking is a side channel: the sweep goes on)
            self.warned = True
            print(
                f"warning: W&B {what} failed ({type(e).__name__}: {e}); W&B logging stops here, the sweep goes on",
                file=sys.stderr,
            )

    def _mark(self, run_id: str, **fields) -> None:
        self.ledger.setdefault(run_id, {}).update(fields)
        atomic_write_json(self.ledger_path, self.ledger)

    def row(self, trial) -> str:
        """A trial's key: its results row; for a confirmation, its config and seed, which a rerun of an
        interrupted confirmation runs again under a new Tune trial."""
        if self.job_type == "confirm":
            params = flat_params(trial.config)
            try:
                return f"confirm-{self.configs.hash_of(params)}-seed{params.get('seed')}"
            except ValueError:
                pass
        return row_of(trial)

    def run_id(self, row: str) -> str:
        return f"{self.token}-{row}"

    def _init(self, run_id: str, **kwargs):
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")  # its banner would land in every trial's console lines
        SweepFolder(self.folder).wandb.mkdir(parents=True, exist_ok=True)
        self.mode = self.mode or mode()
        quiet = {"silent": True, "console": "off", "x_disable_stats": True}  # no console capture, no system monitor
        try:  # the run file flushed every 1 s (wandb's default 15 s: a killed driver loses less); a private setting
            settings = wandb.Settings(**quiet, x_transaction_log_flush_interval=1)
        except Exception:  # noqa: BLE001  (a wandb without it: its default)
            settings = wandb.Settings(**quiet)
        return wandb.init(
            project=self.project,
            group=self.group,
            id=run_id,
            dir=str(self.folder),
            mode=self.mode,
            resume="allow",
            reinit="create_new",
            settings=settings,
            **kwargs,
        )

    # ------------------------------------------------------------ Tune's hooks
    def on_trial_start(self, iteration, trials, trial, **info):
        self._guard("trial start", self._start, trial)

    def _start(self, trial) -> None:
        row = self.row(trial)  # a lost hand-out run again continues its first run
        if row in self.runs or self.ledger.get(self.run_id(row), {}).get("final"):
            return
        params = flat_params(trial.config)
        config, tags = dict(params), [self.space.name]
        try:
            cfg = self.configs.of(params)
            config.update(preset=cfg.preset, steps=cfg.steps, seed=cfg.seed, config_hash=cfg.config_hash())
            self.last_step[row] = cfg.steps
            objective = self.space.baseline_of(params) or params.get("objective") or f"target {cfg.target}"
        except ValueError:  # a bad config: the trial fails with this message itself
            objective = "config"
        tags.append(objective)
        self.opened[row] = {"job_type": self.job_type, "name": f"{objective} {row}", "config": config, "tags": tags}
        self.runs[row] = self._init(self.run_id(row), **self.opened[row])

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = self.row(trial)
        run = self.runs.get(row)
        if run is not None and "intermediate_fid" in result:
            # a row goes to wandb's run file when committed; the last step's waits for the final FIDs beside it
            commit = result["step"] != self.last_step.get(row)
            self._guard(
                "metric", self._log, run, {"intermediate_fid": result["intermediate_fid"]}, result["step"], commit
            )

    def _log(self, run, values: dict, step: int, commit: bool = True) -> None:
        if step <= self.ledger.get(run.id, {}).get("step", -1):  # logged before this driver: not twice
            return
        run.log(values, step=int(step), commit=commit)
        (self.pending.discard if commit else self.pending.add)(run.id)
        self._mark(run.id, step=int(step))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._guard("trial end", self._end, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._guard("trial end", self._end, trial)

    def _end(self, trial) -> None:
        row = self.row(trial)
        run = self.runs.pop(row, None)
        if run is None:
            return
        last = trial.last_result or {}
        if "final_fid" not in last and signals.stopping():  # interrupted: continues on --resume
            run.summary["status"] = "interrupted"
            run.finish(exit_code=signals.exit_code() or 1)
            return
        status = last.get("status", "completed" if "final_fid" in last else "error")
        finals = final_metrics(last, skip=("step",), tune_keys=SKIPPED_TUNE_KEYS)
        step, prior = int(last.get("step") or 0), self.ledger.get(run.id, {}).get("step", -1)
        if step < prior or (step == prior and run.id not in self.pending):  # that row is written: the next one
            step = prior + 1
        grid = TrialFolder(trial.path).samples_png  # Tune may sync it after the trial ends
        if grid.is_file():
            finals["samples"] = _image(grid)
        run.summary.update({"status": status, **{k: str(last[k]) for k in ("fid_kind", "gpu") if last.get(k)}})
        run.log(finals, step=step, commit=True)  # beside the last intermediate FID when it was at this step
        code = 0 if status == "completed" else 1
        # finished now: wandb writes its run file out only on finish (a driver killed a second later would lose
        # the finals, and the ledger would not log them again)
        run.finish(exit_code=code)
        self._mark(run.id, step=step, final=True)
        if "samples" not in finals:  # the usual case: the run opens again for its grid, at the next step
            self.waiting[row] = (grid, step + 1, code)

    def on_step_end(self, iteration, trials, **info):
        if self.waiting:
            self._guard("samples", self._log_grids)

    def _log_grids(self) -> None:
        for row, (grid, step, code) in list(self.waiting.items()):
            if grid.is_file():
                run = self._init(self.run_id(row), **self.opened[row])
                run.log({"samples": _image(grid)}, step=step, commit=True)
                run.finish(exit_code=code)
                self._mark(run.id, step=step)
                del self.waiting[row]

    def on_experiment_end(self, trials, **info):
        self._guard("samples", self._log_grids)  # a grid not synced by now is not logged (it is in the trial folder)
        for row in list(self.runs):  # still open: interrupted with the driver
            run = self.runs.pop(row)
            self._guard("trial end", run.finish, signals.exit_code() or 1)

    # ------------------------------------------------------------ the summary run
    def summarize(self, tables: dict) -> None:
        """Logs ``tables`` (name -> DataFrame: the leaderboard, a confirmation) as W&B tables into the sweep's
        summary run, and closes W&B. Called once the sweep's or the confirmation's own tables are written."""
        self._guard("summary", self._summarize, tables)
        self._guard("teardown", _teardown)

    def _summarize(self, tables: dict) -> None:
        import wandb

        tables = {k: v for k, v in tables.items() if v is not None and len(v)}
        if not tables:
            return
        run_id = self.run_id("summary")
        run = self._init(run_id, job_type="summary", name=f"{self.group} summary", config={"space": self.space.name})
        step = self.ledger.get(run_id, {}).get("step", -1) + 1  # each driver's tables after the last ones
        run.log({k: wandb.Table(dataframe=_loggable(v)) for k, v in tables.items()}, step=step)
        board = tables.get("leaderboard")
        if board is not None and "final_fid" in board:
            run.summary.update({"best_final_fid": float(board["final_fid"].min()), "ranked": len(board)})
        self._mark(run_id, step=step)
        run.finish()
        where = SweepFolder(self.folder).wandb
        if self.mode == "offline":
            print(f"W&B: {self.project}/{self.group} written offline to {where}; upload with: wandb sync {where}")
        else:
            print(f"W&B: project {self.project}, group {self.group} ({self.mode})")


def tracker(project: str | None, folder: Path, configs, space, job_type: str = "trial") -> WandbTracking | None:
    """The sweep's W&B callback when it logs to ``project``, else None."""
    if not project:
        return None
    from sweep.tables import load_sweep_json

    # wandb leaves its service's address in the environment for child processes: a driver started by a process
    # that used wandb (a notebook, a test) would log through that process's service, where the runs of a
    # killed driver stay open and a resumed one is refused their ids. Each driver runs a service of its own.
    os.environ.pop("WANDB_SERVICE", None)

    return WandbTracking(project, folder, load_sweep_json(folder), configs, space, job_type)


def _image(path: Path):
    import wandb

    return wandb.Image(str(path))


def _loggable(frame):
    """A table W&B takes: text where a column mixes types (a CSV's empty cells are NaN beside words)."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: "" if v is None or v != v else str(v))
    return frame


def _teardown() -> None:
    import wandb

    wandb.teardown()  # its service process ends with the sweep
