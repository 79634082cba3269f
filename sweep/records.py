"""The results table: one row per trial, written atomically as trials finish.

``<results-dir>/<sweep>/trials.csv``      every trial, failed ones too (status, error)
``<results-dir>/<sweep>/leaderboard.csv`` completed trials ranked by final FID
``<results-dir>/leaderboard.csv``         every sweep merged (same config hash and seed once)

Rankings never mix kinds of FID: ranks are per ``fid_kind`` (a 5k stand-in
score and a 50k clean-fid score are different numbers).
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

from trainer.config import PRESETS, SEED_MAX, from_flat
from trainer.objectives import OBJECTIVES
from trainer.runtime import atomic_write_bytes

PROTOCOL_FID_KIND = "clean-fid/cifar10-train-32/50k/euler10"
MEANFLOW_REFERENCE_FID = OBJECTIVES["meanflow"].reference_fid
LEAD = ["rank", "trial_id", "sweep", "space", "status", "error", "diverged_step", "baseline"]
TAIL = [
    "final_fid",
    "meanflow_fid",
    "delta_vs_meanflow",
    "best_intermediate_fid",
    "fid_kind",
    "fid_samples",
    "steps",
    "step",
    "final_loss",
    "final_fm_mse",
    "train_seconds",
    "eval_seconds",
    "fid_seconds",
    "wall_seconds",
    "step_ms",
    "gpus",
    "train_gpu_seconds",
    "fid_gpu_seconds",
    "gpu_seconds",
    "gpu_hours",
    "pareto",
    "gpu",
    "seed",
    "config_hash",
    "protocol_version",
    "versions",
    "started_at",
    "finished_at",
    "trial_dir",
    "restarts",
]
FAILED = ("diverged", "oom", "error")  # statuses of trials that failed (never ranked)
ENDED = ("completed", "stopped", *FAILED)  # a trial with one of these statuses never runs again
# Measurement columns with a step count or step in their name (after the fixed ones).
MEASURED_PREFIXES = ("intermediate_fid_", "final_fid_nfe", "fid_kind_nfe", "confirm_")


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The trainer config keys among a table's columns (what a trial *is*), sorted."""
    return sorted(c for c in frame.columns if c not in LEAD + TAIL and not c.startswith(MEASURED_PREFIXES))


def row_params(row: dict) -> dict:
    """A results row's trainer config keys, back in their types (a CSV gives 7.0 for 7, nan for unset)."""
    import dataclasses

    from trainer.config import TrainConfig

    ints = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", int)}
    out = {}
    for key in param_columns(pd.DataFrame(columns=list(row))):
        value = row[key]
        if key == "seed" or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if hasattr(value, "item"):  # numpy scalars from pandas
            value = value.item()
        if key in ints and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())


# Identifiers are text: a trial id like 48588e49 or a hash like 1234e56 would otherwise parse as a float.
TEXT_COLUMNS = {c: str for c in ("trial_id", "sweep", "space", "status", "baseline", "config_hash", "error", "label")}


STATUSES = ("pending", "running", "completed", "stopped", "interrupted", *FAILED)


class DamagedTable(ValueError):
    """A results table that does not parse as one: named, never rewritten."""


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=TEXT_COLUMNS) if path.is_file() and path.stat().st_size else pd.DataFrame()


def read_table(path: Path) -> pd.DataFrame:
    """A trials table, checked: it parses, every row has a trial id and a known status, no row is cut short.

    A damaged one raises DamagedTable naming the file: it is refused, never
    rewritten with fewer rows than it had.
    """
    if not path.is_file() or not path.stat().st_size:
        return pd.DataFrame()
    text = path.read_bytes()  # read once: parsed by pandas, and counted record by record below
    try:
        frame = pd.read_csv(io.BytesIO(text), dtype=TEXT_COLUMNS)
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
    for column in frame.columns:
        if column in NUMERIC or column.startswith(NUMERIC_PREFIXES):
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


# Measurement columns that hold numbers (read back from trials.csv, checked as strictly as a flag's value).
NUMERIC = (
    "final_fid", "best_intermediate_fid", "fid_samples", "steps", "step", "seed", "restarts", "diverged_step",
    "train_seconds", "eval_seconds", "fid_seconds", "wall_seconds", "step_ms", "gpus", "train_gpu_seconds",
    "fid_gpu_seconds", "gpu_seconds", "protocol_version", "final_loss", "final_fm_mse",
)  # fmt: skip
NUMERIC_PREFIXES = ("intermediate_fid_", "final_fid_nfe")


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Identity first, then the searched parameters (sorted), then the measurements."""
    cols = [c for c in LEAD if c in frame] + param_columns(frame) + [c for c in TAIL if c in frame]
    return frame[cols + [c for c in frame.columns if c not in cols]]


def rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed trials with a final FID, ranked within each fid_kind, with the delta to MeanFlow.

    The MeanFlow FID compared against is the best ``meanflow`` baseline measured
    with the same fid_kind and protocol version in ``frame``; failing that, the
    protocol's 41.81 when the kind is the protocol's; otherwise no delta. Rows
    written before protocol versions existed are version 1.
    """
    if frame.empty or "final_fid" not in frame:
        return pd.DataFrame(columns=["rank", *frame.columns, "meanflow_fid", "delta_vs_meanflow"])
    versions = pd.to_numeric(frame.get("protocol_version", pd.Series(index=frame.index, dtype=float)), errors="coerce")
    frame = frame.assign(
        final_fid=pd.to_numeric(frame["final_fid"], errors="coerce"), protocol_version=versions.fillna(1).astype(int)
    )
    done = frame[(frame["status"] == "completed") & frame["final_fid"].notna()].copy()
    measured = done[done.get("baseline", pd.Series(index=done.index, dtype=object)) == "meanflow"]
    measured = measured.groupby(["fid_kind", "protocol_version"])["final_fid"].min().to_dict()

    def reference(kind, version):
        if (kind, version) in measured:
            return measured[(kind, version)]
        return MEANFLOW_REFERENCE_FID if kind == PROTOCOL_FID_KIND else math.nan

    refs = [reference(k, v) for k, v in zip(done["fid_kind"], done["protocol_version"])]
    done["meanflow_fid"] = pd.Series(refs, index=done.index, dtype=float)
    done["delta_vs_meanflow"] = done["final_fid"] - done["meanflow_fid"]
    if "gpu_seconds" in done and "config_hash" in done:  # the whole cost of a config: every seed it ran
        cost = pd.to_numeric(done["gpu_seconds"], errors="coerce")
        done["gpu_hours"] = cost.groupby(done["config_hash"]).transform("sum") / 3600.0
        done["pareto"] = False
        for _, idx in done.groupby("fid_kind").groups.items():
            done.loc[idx, "pareto"] = pareto_front(done.loc[idx, ["final_fid", "gpu_hours"]].to_numpy(float))
    done = done.sort_values(["fid_kind", "final_fid"], kind="stable")
    done.insert(0, "rank", done.groupby("fid_kind").cumcount() + 1)
    return done.reset_index(drop=True)


def pareto_front(points) -> list[bool]:
    """Which rows of ``points`` (n, k), all minimised, no other row dominates (<= everywhere, < somewhere).

    Rows with a NaN are never on the front.
    """
    import numpy as np

    pts = np.asarray(points, dtype=float)
    ok = ~np.isnan(pts).any(axis=1)
    front = []
    for i, p in enumerate(pts):
        dominated = ok & (pts <= p).all(axis=1) & (pts < p).any(axis=1)
        front.append(bool(ok[i] and not dominated.any()))
    return front


CONFIRM_COLUMNS = (
    "n",
    "n_failed",
    "failed_seeds",
    "mean_fid",
    "ci_low",
    "ci_high",
    "delta_mean",
    "delta_ci_low",
    "delta_ci_high",
    "p_holm",
    "verdict",
)


def attach_confirmations(board: pd.DataFrame, paths) -> pd.DataFrame:
    """Adds ``confirm_*`` columns (by config_hash) from confirm.csv files and a ``claim`` column.

    Where several confirmations hold a config, the one with the most seeds wins.
    ``claim`` says what a row may claim against MeanFlow: a confirmation's
    verdict with the paired difference's 95% interval, or "unconfirmed" for a
    single-seed delta below 0.
    """
    frames = [read_csv(p) for p in paths]
    frames = [f for f in frames if not f.empty and "config_hash" in f]
    if board.empty:
        return board
    if frames and "config_hash" in board:
        conf = pd.concat(frames, ignore_index=True).sort_values("n", ascending=False, kind="stable")
        conf = conf.drop_duplicates("config_hash")[["config_hash", *[c for c in CONFIRM_COLUMNS if c in conf]]]
        conf = conf.rename(columns={c: f"confirm_{c}" for c in CONFIRM_COLUMNS})
        board = board.drop(columns=[c for c in board if c.startswith("confirm_")]).merge(conf, "left", "config_hash")
    board["claim"] = [_claim(row) for row in board.to_dict("records")]
    return board


def _claim(row: dict) -> str:
    verdict = row.get("confirm_verdict")
    if isinstance(verdict, str) and verdict:
        if verdict == "reference":
            return f"reference (n={int(row['confirm_n'])})"
        return (
            f"{verdict}: {row['confirm_delta_mean']:+.4g} FID, 95% CI [{row['confirm_delta_ci_low']:+.4g}, "
            f"{row['confirm_delta_ci_high']:+.4g}] vs meanflow, n={int(row['confirm_n'])}"
        )
    delta = row.get("delta_vs_meanflow")
    return "unconfirmed: one seed, no interval" if isinstance(delta, float) and delta < 0 else ""


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
        return self.dir / ("trials.csv" if self.name == "trials" else f"{self.name}_trials.csv")

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
    trials = read_csv(folder / "trials.csv") if trials is None else trials
    board = attach_confirmations(order_columns(rank(distinct_runs(trials))), [folder / "confirm.csv"])
    write_csv(board, folder / "leaderboard.csv")
    return board


def distinct_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed rows with a final FID, each (config_hash, seed) once (its first finish): a config run again on
    the same seed (a rerun, another sweep) is one run on both the sweep's board and the merged one."""
    if frame.empty or not {"final_fid", "config_hash", "finished_at"} <= set(frame.columns):
        return frame
    done = frame[(frame["status"] == "completed") & frame["final_fid"].notna()]
    return done.sort_values("finished_at", kind="stable").drop_duplicates(["config_hash", "seed"])


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def merge_leaderboards(results_dir: Path) -> pd.DataFrame:
    """Re-reads every sweep's trials.csv under a lock and rewrites ``<results_dir>/leaderboard.csv``.

    Re-reading (not appending) means two sweeps finishing at once cannot lose
    each other's rows; the same (config_hash, seed) counts once (its first finish).
    """
    results_dir = Path(results_dir)
    with FileLock(str(results_dir / ".leaderboard.lock"), timeout=120):
        merged = merged_board(results_dir)
        if not merged.empty:
            write_csv(merged, results_dir / "leaderboard.csv")
        return merged


def merged_board(results_dir: Path, warn=None) -> pd.DataFrame:
    """Every sweep's completed trials ranked together, computed without writing anything.

    A sweep whose trials.csv cannot be read is skipped with a warning naming
    the file: one broken sweep never breaks its neighbours.
    """
    import sys

    warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr))
    frames = []
    for path in sorted(Path(results_dir).glob("*/trials.csv")):
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
    return attach_confirmations(order_columns(rank(merged)), sorted(Path(results_dir).glob("*/confirm.csv")))


def load_sweep_json(folder: Path) -> dict:
    """A sweep's settings (sweep.json), checked: a damaged file is one sentence naming it, never a traceback."""
    from search_spaces import SPACES

    path = Path(folder) / "sweep.json"
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
    ("scheduler", lambda v: isinstance(v, str) and v in ("none", "asha"), "none or asha"),
    ("metric", lambda v: isinstance(v, str) and re.fullmatch(r"final_fid(_nfe\d+)?", v), "final_fid[_nfe<k>]"),
    ("objectives", lambda v: isinstance(v, str) and v in ("fid", "fid,cost"), "fid or fid,cost"),
    ("max_failures", _count(0), "an integer >= 0"),
    (
        "storage",
        lambda v: isinstance(v, str) and (v in ("sqlite", "journal") or "://" in v),
        "sqlite, journal or a URL",
    ),
)
