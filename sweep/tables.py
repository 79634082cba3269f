"""The results files: one row per trial, written atomically as trials start, report and finish.

``<results-dir>/<sweep>/trials.csv``      every trial, failed ones too (status, error)
``<results-dir>/<sweep>/leaderboard.csv`` completed trials ranked by final FID
``<results-dir>/leaderboard.csv``         every sweep merged (same config hash and seed once)

Every file read back is checked (a damaged one is one sentence naming it, never rewritten shorter), and one
damaged sweep never breaks its neighbours.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pandas as pd
from filelock import FileLock

from sweep.flags import SAMPLER_NAMES, SCHEDULERS
from sweep.folder import ResultsFolder, SweepFolder
from sweep.columns import STATUSES, legacy_columns, numeric_columns, order_columns, text_columns
from sweep.ranking import attach_confirmations, distinct_runs, rank
from trainer.config import PRESETS, SEED_MAX, from_flat
from trainer.runtime import atomic_write_bytes


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())


class DamagedTable(ValueError):
    """A results table that does not parse as one: named, never rewritten."""


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV this project wrote whole, such as confirm.csv, unchecked (a trials table: ``read_table``)."""
    if not path.is_file() or not path.stat().st_size:
        return pd.DataFrame()
    return pd.read_csv(path, dtype=text_columns())


def read_table(path: Path) -> pd.DataFrame:
    """A trials table, checked: it parses, every row has a trial id and a known status, no row is cut short.

    A damaged one raises DamagedTable naming the file: it is refused, never
    rewritten with fewer rows than it had.
    """
    if not path.is_file() or not path.stat().st_size:
        return pd.DataFrame()
    text = path.read_bytes()  # read once: parsed by pandas, and counted record by record below
    try:
        frame = legacy_columns(pd.read_csv(io.BytesIO(text), dtype=text_columns()))
        rows_in_file = sum(1 for _ in csv.reader(io.StringIO(text.decode()))) - 1  # records after the header
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise DamagedTable(f"{path} is damaged ({str(e).splitlines()[0]}); move it away or repair it") from None
    if frame.empty:
        return frame
    bad = (
        "trial_id" not in frame
        or "status" not in frame
        or frame["trial_id"].isna().any()
        or not frame["status"].isin(STATUSES).all()
        or not text.endswith(b"\n")  # the writer ends every row: a missing newline is a cut
        or len(frame) != rows_in_file
    )
    if bad:
        raise DamagedTable(
            f"{path} is damaged (a row is cut short or a trial id or status is missing); "
            "it will not be rewritten: move it away or repair it"
        )
    for column in numeric_columns(frame.columns):
        given = frame[column].notna()
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if (given & numbers.isna()).any():
            value = frame.loc[given & numbers.isna(), column].iloc[0]
            raise DamagedTable(
                f"{path} is damaged (column {column} holds {value!r}, not a number); "
                "it will not be rewritten: move it away or repair it"
            )
        frame[column] = numbers
    return frame


class SweepTable:
    """Rows of one sweep, keyed by trial id; ``save()`` rewrites its CSVs and the merged leaderboard.

    A confirmation keeps its own rows (``name="confirm"``: confirm_trials.csv, no
    board of its own); its summary reaches the boards through confirm.csv.
    """

    def __init__(self, results_dir: Path, sweep: str, space: str, name: str = "trials"):
        self.results_dir, self.sweep, self.space, self.name = Path(results_dir), sweep, space, name
        self.dir = self.results_dir / sweep
        self.rows: dict[str, dict] = {}
        self.loaded = 0  # rows read back: a save never writes fewer

    @property
    def trials_csv(self) -> Path:
        folder = SweepFolder(self.dir)
        return {"trials": folder.trials_csv, "confirm": folder.confirm_trials_csv}[self.name]

    def load(self) -> None:
        """Reads back trials.csv (on resume): finished rows survive any crash of the driver.

        A damaged table raises DamagedTable; ``save`` then never writes fewer rows than were read.
        """
        frame = read_table(self.trials_csv)
        for row in frame.to_dict("records"):
            self.rows[str(row["trial_id"])] = {k: v for k, v in row.items() if not _isnan(v)}
        self.loaded = len(self.rows)

    def update(self, trial_id: str, **fields) -> dict:
        row = self.rows.setdefault(
            trial_id, {"trial_id": trial_id, "sweep": self.sweep, "space": self.space, "status": "pending"}
        )
        for key, value in fields.items():
            row[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        return row

    def interrupt_running(self) -> None:
        """The driver stopped: rows still pending or running are interrupted (they continue on resume)."""
        for trial_id, row in self.rows.items():
            if row["status"] in ("pending", "running"):
                self.update(trial_id, status="interrupted")
        self.save()

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(list(self.rows.values()))
        return order_columns(frame) if len(frame) else frame

    def save(self, boards: bool = True) -> None:
        """Rewrites trials.csv and, unless ``boards`` is False, the leaderboards (which only completed rows move)."""
        frame = self.frame()
        if frame.empty:
            return
        if len(frame) < self.loaded:  # never lose a row that was on disk
            raise DamagedTable(f"refusing to rewrite {self.trials_csv} with {len(frame)} of its {self.loaded} rows")
        write_csv(frame, self.trials_csv)
        if boards and self.name == "trials":
            write_board(self.dir, frame)
            merge_leaderboards(self.results_dir)


def write_board(folder: Path, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rewrites a sweep's leaderboard.csv from its trials (default: its trials.csv) and its confirm.csv."""
    folder = SweepFolder(folder)
    trials = read_table(folder.trials_csv) if trials is None else trials
    board = ranked(distinct_runs(trials), read_confirmations([folder.confirm_csv]))
    write_csv(board, folder.leaderboard_csv)
    return board


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def merge_leaderboards(results_dir: Path) -> pd.DataFrame:
    """Re-reads every sweep's trials.csv under a lock and rewrites ``<results_dir>/leaderboard.csv``.

    Re-reading (not appending) means two sweeps finishing at once cannot lose
    each other's rows; the same (config_hash, seed) counts once (its first finish).
    """
    results = ResultsFolder(results_dir)
    with FileLock(str(results.leaderboard_lock), timeout=120):
        merged = merged_board(results.path)
        if not merged.empty:
            write_csv(merged, results.leaderboard_csv)
        return merged


def ranked(frame: pd.DataFrame, confirmations: list[pd.DataFrame], metric: str = "final_fid") -> pd.DataFrame:
    """A board: ``frame``'s completed rows ranked by ``metric`` (ranked again if they were), with their claims."""
    frame = frame.drop(columns=[c for c in ("rank",) if c in frame])
    return attach_confirmations(order_columns(rank(frame, metric)), confirmations, metric)


def merged_board(results_dir: Path, warn=None, metric: str = "final_fid") -> pd.DataFrame:
    """Every sweep's completed trials ranked together by ``metric``, computed without writing anything.

    A sweep whose trials.csv cannot be read is skipped with a warning naming
    the file: one broken sweep never breaks its neighbours.
    """
    import sys

    warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr))
    frames = []
    for path in ResultsFolder(results_dir).trials_tables():
        try:
            frame = read_table(path)
        except (DamagedTable, OSError) as e:
            warn(f"skipping {path}: {e}")
            continue
        if not frame.empty and {"final_fid", "config_hash", "finished_at", "fid_kind"} <= set(frame.columns):
            frames.append(frame)
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if merged.empty:
        return merged
    merged = distinct_runs(merged)
    return ranked(merged, read_confirmations(ResultsFolder(results_dir).confirm_tables()), metric)


def load_sweep_json(folder: Path) -> dict:
    """A sweep's settings (sweep.json), checked: a damaged file is one sentence naming it, never a traceback."""
    from search_spaces import SPACES

    path = SweepFolder(folder).sweep_json
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise DamagedTable(f"{path} is empty or not JSON: the sweep's settings are lost; start a new sweep") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("base"), dict) or "preset" not in saved:
        raise DamagedTable(f"{path} lacks the sweep's settings (space, preset, base): start a new sweep")
    if not isinstance(saved.get("space"), str) or saved["space"] not in SPACES:
        raise DamagedTable(f"{path} names the unknown space {saved.get('space')!r}; spaces: {', '.join(SPACES)}")
    for key, ok, accepted in SWEEP_SETTINGS:
        if key in saved and not ok(saved[key]):
            raise DamagedTable(f"{path} holds {key}={saved[key]!r}, which is not {accepted}: repair it or start anew")
    try:
        from_flat(saved["base"])
    except ValueError as e:
        raise DamagedTable(f"{path} holds a base config the trainer refuses ({e}): repair it or start anew") from None
    return saved


def _count(low: int, high: int = 2**63):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


# Every setting sweep.json may hold (older files lack the newer ones): a check and what it accepts, as for a flag.
SWEEP_SETTINGS = (
    ("name", lambda v: isinstance(v, str) and bool(v), "a sweep name"),
    ("preset", lambda v: isinstance(v, str) and v in PRESETS, "a preset name"),
    ("trials", _count(1), "an integer >= 1"),
    ("seeds", _count(1), "an integer >= 1"),
    ("seed", _count(0, SEED_MAX), f"an integer in [0, {SEED_MAX}]"),
    ("sampler", lambda v: isinstance(v, str) and v in SAMPLER_NAMES, " or ".join(SAMPLER_NAMES)),
    ("scheduler", lambda v: isinstance(v, str) and v in SCHEDULERS, " or ".join(SCHEDULERS)),
    ("metric", lambda v: isinstance(v, str) and re.fullmatch(r"final_fid(_nfe\d+)?", v), "final_fid[_nfe<k>]"),
    ("objectives", lambda v: isinstance(v, str) and v in ("fid", "fid,cost"), "fid or fid,cost"),
    ("max_failures", _count(0), "an integer >= 0"),
    (
        "storage",
        lambda v: isinstance(v, str) and (v in ("sqlite", "journal") or "://" in v),
        "sqlite, journal or a URL",
    ),
    ("mlflow", lambda v: v is None or isinstance(v, str), "a tracking URI, empty or null"),
    ("wandb_project", lambda v: v is None or (isinstance(v, str) and bool(v)), "a W&B project name or null"),
)


def read_confirmations(paths) -> list[pd.DataFrame]:
    """The confirm.csv files among ``paths`` that exist and hold rows."""
    frames = [read_csv(Path(p)) for p in paths]
    return [f for f in frames if not f.empty and "config_hash" in f]
