"""The results table: one row per trial, written atomically as trials finish.

``<results-dir>/<sweep>/trials.csv``      every trial, failed ones too (status, error)
``<results-dir>/<sweep>/leaderboard.csv`` completed trials ranked by final FID
``<results-dir>/leaderboard.csv``         every sweep merged (same config hash and seed once)

Rankings never mix kinds of FID: ranks are per ``fid_kind`` (a 5k stand-in
score and a 50k clean-fid score are different numbers).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
from filelock import FileLock

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
    "fid_seconds",
    "wall_seconds",
    "gpu",
    "seed",
    "config_hash",
    "protocol_version",
    "versions",
    "started_at",
    "finished_at",
]
FAILED = ("diverged", "oom", "error")  # statuses of trials that failed (never ranked)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    atomic_write_bytes(path, buf.getvalue().encode())


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Identity first, then the searched parameters (sorted), then the measurements."""
    params = sorted(c for c in frame.columns if c not in LEAD + TAIL)
    cols = [c for c in LEAD if c in frame] + params + [c for c in TAIL if c in frame]
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
    done = done.sort_values(["fid_kind", "final_fid"], kind="stable")
    done.insert(0, "rank", done.groupby("fid_kind").cumcount() + 1)
    return done.reset_index(drop=True)


class SweepTable:
    """Rows of one sweep, keyed by trial id; ``save()`` rewrites its CSVs and the merged leaderboard."""

    def __init__(self, results_dir: Path, sweep: str, space: str):
        self.results_dir, self.sweep, self.space = Path(results_dir), sweep, space
        self.dir = self.results_dir / sweep
        self.rows: dict[str, dict] = {}

    @property
    def trials_csv(self) -> Path:
        return self.dir / "trials.csv"

    def load(self) -> None:
        """Reads back trials.csv (on resume): finished rows survive any crash of the driver."""
        frame = read_csv(self.trials_csv)
        for row in frame.to_dict("records"):
            self.rows[str(row["trial_id"])] = {k: v for k, v in row.items() if not _isnan(v)}

    def update(self, trial_id: str, **fields) -> dict:
        row = self.rows.setdefault(
            trial_id, {"trial_id": trial_id, "sweep": self.sweep, "space": self.space, "status": "pending"}
        )
        for key, value in fields.items():
            row[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        return row

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(list(self.rows.values()))
        return order_columns(frame) if len(frame) else frame

    def save(self) -> None:
        frame = self.frame()
        if frame.empty:
            return
        write_csv(frame, self.trials_csv)
        write_csv(order_columns(rank(frame)), self.dir / "leaderboard.csv")
        merge_leaderboards(self.results_dir)


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def merge_leaderboards(results_dir: Path) -> pd.DataFrame:
    """Re-reads every sweep's trials.csv under a lock and rewrites ``<results_dir>/leaderboard.csv``.

    Re-reading (not appending) means two sweeps finishing at once cannot lose
    each other's rows; the same (config_hash, seed) counts once (its first finish).
    """
    results_dir = Path(results_dir)
    with FileLock(str(results_dir / ".leaderboard.lock"), timeout=120):
        frames = [read_csv(p) for p in sorted(results_dir.glob("*/trials.csv"))]
        frames = [f for f in frames if not f.empty]
        merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if not merged.empty and "final_fid" in merged:
            merged = merged[(merged["status"] == "completed") & merged["final_fid"].notna()]
            merged = merged.sort_values("finished_at", kind="stable").drop_duplicates(["config_hash", "seed"])
            merged = order_columns(rank(merged))
            write_csv(merged, results_dir / "leaderboard.csv")
        return merged
