"""Every file and sub-folder the project writes under ``--results-dir``, each named once, here.

``ResultsFolder`` is ``<results-dir>/``, ``SweepFolder`` one sweep's ``<results-dir>/<sweep>/``, and
``TrialFolder`` one trial's folder as Tune made it (under ``ray/<experiment>/``). On a record an entry is
its path (``SweepFolder(p).trials_csv``); on the class it is the entry itself, whose ``name`` a glob over
sibling folders uses. Every other module asks these records for a path and never spells a name
(``tests/sweep/test_folder.py`` holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class Entry:
    """A file or sub-folder of a folder record: its path on a record, the entry itself on the class."""

    def __init__(self, *parts: str):
        self.parts = parts  # below the record's folder: one part, or a sub-folder's then its own

    @property
    def name(self) -> str:
        return self.parts[-1]

    def __get__(self, record, owner=None):
        return self if record is None else record.path.joinpath(*self.parts)


@dataclass(frozen=True)
class _Folder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class SweepFolder(_Folder):
    """``<results-dir>/<sweep>/``: one sweep's records (``--name``)."""

    sweep_json = Entry("sweep.json")  # the sweep's settings: what --resume and the confirmation read
    trials_csv = Entry("trials.csv")  # one row per trial, failed ones too: its config, status, FIDs, costs
    leaderboard_csv = Entry("leaderboard.csv")  # this sweep's completed trials ranked, with confirm_* columns
    optuna_db = Entry("optuna.db")  # the Optuna study with --storage sqlite
    optuna_journal = Entry("optuna.journal")  # the Optuna study with --storage journal (shared file systems)
    rungs = Entry("asha_rungs.jsonl")  # ASHA's rung values, one line per result: a resumed sweep starts from them
    finals = Entry("finals")  # each finished trial's final result, <row id>.json: a restored trial never reruns
    confirm_json = Entry("confirm.json")  # a confirmation's plan: its configs and seeds (what its rerun resumes)
    confirm_trials_csv = Entry("confirm_trials.csv")  # a confirmation's runs, one row each (as trials.csv)
    confirm_csv = Entry("confirm.csv")  # a confirmation's summary: per config its interval and verdict
    report_html = Entry("report.html")  # sweep.report's page, its figures inlined
    report_figures = Entry("report")  # sweep.report's figures as PNG files
    mlflow_db = Entry("mlflow.db")  # with --mlflow and no URI: the MLflow tracking store
    mlartifacts = Entry("mlartifacts")  # beside mlflow.db: the MLflow runs' artifacts (sample grids)
    wandb = Entry("wandb")  # with --wandb: W&B's offline runs (wandb sync uploads them) and the ledger
    wandb_ledger = Entry(*wandb.parts, "ledger.json")  # the last step logged per W&B run: nothing logged twice
    ray = Entry("ray")  # Tune's storage: one experiment folder per search or confirmation run
    tune = Entry(*ray.parts, "tune")  # the search's Tune experiment: what --resume restores
    sim_log = Entry("sim_log.jsonl")  # sweep.simulate: every simulated trial's results, for its analysis
    driver_log = Entry("driver.log")  # sweep.simulate: what the driver printed

    def final_json(self, row: str) -> Path:
        """A finished trial's final result (``row``: its ``sweep.trainable.row_id``)."""
        return self.finals / f"{row}.json"

    def confirm_run(self, stamp: str) -> Path:
        """A confirmation run's Tune experiment (``stamp``: its start time): each run its own."""
        return self.ray / f"confirm-{stamp}"


@dataclass(frozen=True)
class ResultsFolder(_Folder):
    """``<results-dir>/``: a folder per sweep (named by ``--name``) and what the sweeps share."""

    leaderboard_csv = Entry("leaderboard.csv")  # every sweep's completed trials, each (config, seed) once, ranked
    leaderboard_lock = Entry(".leaderboard.lock")  # held while leaderboard.csv is re-made: two sweeps never clash
    compile_cache = Entry("compile-cache")  # torch.compile's graphs, shared by every trial of every sweep

    def sweep(self, name: str) -> SweepFolder:
        return SweepFolder(self.path / name)

    def node_check(self, token: str) -> Path:
        """A marker the driver writes for the length of its node check: a node that sees it shares the folder."""
        return self.path / f".node-check-{token}"

    def trials_tables(self) -> list[Path]:
        """Every sweep's trials table, sorted (a folder without one is no sweep)."""
        return sorted(self.path.glob(f"*/{SweepFolder.trials_csv.name}"))

    def confirm_tables(self) -> list[Path]:
        """Every sweep's confirmation summary, sorted."""
        return sorted(self.path.glob(f"*/{SweepFolder.confirm_csv.name}"))


@dataclass(frozen=True)
class TrialFolder(_Folder):
    """One trial's folder as Tune made it (the ``trial_dir`` column): Tune's own files and the trainer's."""

    progress_csv = Entry("progress.csv")  # Tune's: every result the trial reported
    out = Entry("out")  # the trainer's out_dir: result.json and the sample grid (trainer/trial.py)
    samples_png = Entry("out", "samples.png")  # the trainer's grid of samples, written at the trial's end
