"""Reading W&B's offline run files back (``run-<id>.wandb``), for the tests: wandb 0.31 ships no reader.

The file is a 7-byte header (``:W&B``, 0xBEE1, version) and then LevelDB-log records in 32 KiB blocks: a
CRC32 (of the type byte, then the data), a 2-byte length and a type (1 whole, 2 first, 3 middle, 4 last); each
whole record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

BLOCK, HEADER = 32768, 7


def records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if len(data) < HEADER:  # a run killed before its first flush
        return
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1, path
    pos, parts = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        crc, size, kind = struct.unpack("<IHB", data[pos : pos + HEADER]) if left >= HEADER else (0, 0, 0)
        if left < HEADER or (crc, size, kind) == (0, 0, 0):  # a block's padding
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + size]
        if len(chunk) < size:  # cut short by a kill
            return
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad CRC in {path} at {pos}"
        pos += HEADER + size
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            yield record


def _put(into: dict, item, value) -> None:
    keys = list(item.nested_key) or [item.key]
    for key in keys[:-1]:
        into = into.setdefault(key, {})
    into[keys[-1]] = value


def read_run(path: Path) -> dict:
    """run id, project, group, job type, name, tags, config, history rows (with ``_step``), summary, exit code."""
    out = {"config": {}, "history": [], "summary": {}, "exit_code": None, "path": Path(path)}
    out["id"] = Path(path).name[len("run-") : -len(".wandb")]  # also where a kill left no run record
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(id=run.run_id, project=run.project, group=run.run_group, job_type=run.job_type)
            out.update(name=run.display_name, tags=list(run.tags))
            out["config"].update({i.key: json.loads(i.value_json) for i in run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            row = {}
            for item in record.history.item:
                _put(row, item, json.loads(item.value_json))
            out["history"].append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(out["summary"], item, json.loads(item.value_json))
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    out["config"].pop("_wandb", None)
    return out


def runs_of(folder: Path, timeout: float = 20.0) -> dict[str, list[dict]]:
    """Every offline run under ``<folder>/wandb``, by run id, each start in order; waits up to ``timeout`` for
    their exit records (a run whose process was killed never gets one)."""
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(Path(folder).glob("wandb/offline-run-*/run-*.wandb"))
        runs = [read_run(f) for f in files]
        if all(r["exit_code"] is not None for r in runs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_id: dict[str, list[dict]] = {}
    for run in runs:  # folder names start with the start time: in order
        by_id.setdefault(run["id"], []).append(run)
    return by_id


def media(run: dict, ref: dict) -> Path:
    """A logged image's or table's file."""
    return run["path"].parent / "files" / ref["path"]


def table(run: dict, ref: dict):
    import pandas as pd

    data = json.loads(media(run, ref).read_text())
    return pd.DataFrame(data["data"], columns=data["columns"])
