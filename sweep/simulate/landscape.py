"""A landscape of real trials: ``python -m sweep.simulate landscape`` runs ``sweep.run`` itself (Ray Tune,
Optuna, the real trainer on the ``cpu`` preset, its stand-in FID) over a Sobol design of a space
(``--sampler sobol``, ``sweep.design``), every config on ``--seeds`` seeds, with intermediate FIDs at
``--evals`` evenly spaced steps, and writes one table of what the trials measured.

The table (``landscape.csv``): ``#`` lines first (the command, machine, date, versions, space, preset,
steps), then one row per completed trial and evaluation step: ``config`` (a hash of its searched keys),
``seed``, ``step``, ``fid`` (the intermediate FID at that step, on ``eval_samples`` images; at the last
step the final FID on ``fid_samples``, 10 NFE), ``fid_nfe1`` and ``fid_nfe2`` (the final FIDs at 1 and 2
NFE, on the last step's row), ``seconds`` (the trial's wall seconds, on the last step's row), and the
config's searched keys as ``config.<key>`` (empty where the config's branch lacks the key).

Rerunning the same command continues the sweep (``--resume auto``): finished trials are kept and the
table is written again from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import time
from pathlib import Path

import pandas as pd

from sweep.folder import ResultsFolder, SweepFolder

TABLE = "landscape.csv"
SWEEP = "sweep"  # the sweep's name inside --out
META = ("command", "machine", "date", "versions", "space", "preset", "steps", "trials")
FIXED = ["config", "seed", "step", "fid", "fid_nfe1", "fid_nfe2", "seconds"]


def config_id(params: dict) -> str:
    """A config's id: a hash of its searched keys and values (the seed left out)."""
    text = json.dumps({k: v for k, v in sorted(params.items()) if v == v}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def searched(row, keys) -> dict:
    """A trials.csv row's values of ``keys`` (config columns), those its config's branch has."""
    values = {k: row.get(f"config.{k}") for k in keys}
    return {k: v for k, v in values.items() if v is not None and v == v}


def sweep_argv(args, out: Path) -> list[str]:
    """The ``sweep.run`` command line the landscape runs (and reruns to continue)."""
    every = args.steps // args.evals
    return [
        "--space", args.space, "--preset", "cpu", "--steps", str(args.steps), "--set", f"eval_every={every}",
        "--trials", str(args.configs), "--seeds", str(args.seeds), "--sampler", "sobol", "--seed", "0",
        "--max-failures", "1", "--results-dir", str(out), "--name", SWEEP, "--resume", "auto", "--quiet",
    ]  # fmt: skip


def check(args) -> Path:
    """The landscape's own flags (sweep.run checks the rest before Ray starts); returns --out."""
    if args.configs < 2:
        raise ValueError(f"--configs {args.configs} must be at least 2")
    if args.seeds < 2:
        raise ValueError(f"--seeds {args.seeds} must be at least 2: the surrogate reads the seed noise from them")
    if args.evals < 1 or args.steps < 2 * args.evals:
        raise ValueError(f"--evals {args.evals} must be at least 1 and at most half of --steps {args.steps}")
    out = Path(args.out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (a new one, or a landscape's to continue it)")
    if out.is_dir() and any(out.iterdir()) and not (out / SWEEP).is_dir():
        raise ValueError(f"--out {out} holds other files and no landscape; choose a new folder")
    return out


def run(args, argv: list[str]) -> int:
    """Runs (or continues) the sweep, then writes the table from whatever trials completed; ``argv``: the
    command's own arguments (the table records them)."""
    from sweep import run as sweep_run

    out = check(args)
    inner = sweep_argv(args, out)
    print(f"landscape: python -m sweep.run {shlex.join(inner)}", flush=True)
    code = sweep_run.main(inner)
    if code == 2 or not ResultsFolder(out).sweep(SWEEP).trials_csv.is_file():
        return code
    table = out / TABLE
    written = write_table(out / SWEEP, table, command=shlex.join(["python", "-m", "sweep.simulate", *argv]))
    print(f"landscape: {written} rows -> {table}", flush=True)
    return code


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_table(sweep: Path, path: Path, command: str) -> int:
    """The landscape's table from the sweep's trials.csv (completed trials only); returns its rows."""
    from search_spaces import SPACES
    from sweep.simulate.surface import dims_of
    from sweep.tables import load_sweep_json, read_table
    from trainer.runtime import atomic_write_bytes

    saved = load_sweep_json(sweep)
    trials = read_table(SweepFolder(sweep).trials_csv)
    keys = [d.key for d in dims_of(SPACES[saved["space"]])[0]]
    done = trials[trials["status"] == "completed"] if len(trials) else trials
    steps = sorted(int(c.rsplit("_", 1)[1]) for c in trials.columns if c.startswith("intermediate_fid_"))
    rows = []
    for _, t in done.iterrows():
        params = searched(t, keys)
        base = {"config": config_id(params), "seed": int(t["config.seed"])}
        config = {f"config.{k}": params.get(k) for k in keys}
        for step in steps:
            rows.append({**base, "step": step, "fid": t[f"intermediate_fid_{step}"], **config})
        last = {"step": int(t["config.steps"]), "fid": t["final_fid"], "seconds": t["wall_seconds"]}
        nfe = {f"fid_nfe{k}": t.get(f"final_fid_nfe{k}") for k in (1, 2)}
        rows.append({**base, **last, **nfe, **config})
    frame = pd.DataFrame(rows, columns=FIXED + [f"config.{k}" for k in keys])
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    versions = {m: _version(m) for m in ("torch", "ray", "optuna")}
    meta = {
        "command": command,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "versions": ", ".join(f"{m} {v}" for m, v in versions.items()),
        "space": saved["space"],
        "preset": saved["preset"],
        "steps": str(saved["base"].get("steps")),
        "trials": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
    }
    head = "".join(f"# {k}: {meta[k]}\n" for k in META)
    atomic_write_bytes(path, (head + frame.to_csv(index=False)).encode())
    return len(frame)


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "absent"
