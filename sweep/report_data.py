"""What the report draws, read from a sweep folder: schedules, curves, sample grids, importances."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from sweep.columns import row_params
from sweep.folder import TrialFolder
from trainer.config import TrainConfig, from_flat
from trainer.objectives import make_traj_params


def config_of(row: dict) -> TrainConfig:
    """Rebuilds a trial's config from its results row (the searched and fixed keys are columns)."""
    return from_flat(row_params(row))


def curves_of(cfg: TrainConfig, points: int = 201) -> dict:
    fn = make_traj_params(cfg.ratio_fm, cfg.alpha)
    values = [fn(1, k, points, None) for k in range(points)]
    return {
        "progress": [k / (points - 1) for k in range(points)],
        "ratio_fm": [r for r, _ in values],
        "alpha": [a for _, a in values],
    }


def labels(frame: pd.DataFrame, key: str = "trial_id") -> dict[str, str]:
    """A person's name for each ``key`` of ``frame``: its objective (its baseline's name, else ``config.objective``),
    with the trial id where two of them share one ("meanflow (3f2a_00004)")."""
    from sweep.progress import named

    first = frame.drop_duplicates(key) if key in frame else frame.iloc[0:0]
    names = {row[key]: named(row) for row in first.to_dict("records")}
    shared = {n for n in names.values() if list(names.values()).count(n) > 1}
    ids = dict(zip(first[key], first["trial_id"])) if "trial_id" in first else {}
    return {k: f"{n} ({ids.get(k, k)})" if n in shared else n for k, n in names.items()}


def schedule_curves(top: pd.DataFrame, baselines: list[str]) -> list[tuple[str, dict]]:
    rows, named = [], labels(top)
    for row in top.to_dict("records"):
        try:
            rows.append((f"#{row['rank']} {named[row['trial_id']]}", curves_of(config_of(row))))
        except ValueError:
            continue  # a row from an older version of the config: skip rather than fail the report
    rows += [(name, curves_of(from_flat({"objective": name}))) for name in baselines]
    return rows


def trial_dirs(trials: pd.DataFrame) -> dict[str, TrialFolder]:
    """Each trial's folder as Tune reported it when the trial started (the ``trial_dir`` column)."""
    if "trial_dir" not in trials:
        return {}
    return {str(t): TrialFolder(d) for t, d in zip(trials["trial_id"], trials["trial_dir"]) if isinstance(d, str)}


NOWHERE = TrialFolder("/nonexistent")  # a trial without a recorded folder: none of its files exist


def intermediate_curves(trials: pd.DataFrame, trial_ids: list[str]) -> dict[str, pd.DataFrame]:
    dirs, out = trial_dirs(trials), {}
    for tid in trial_ids:
        progress = dirs.get(tid, NOWHERE).progress_csv
        if progress.is_file():
            df = pd.read_csv(progress)
            if "intermediate_fid" in df:
                df = df[["step", "intermediate_fid"]].dropna()
                if len(df):
                    out[tid] = df
    return out


def sample_grid_paths(trials: pd.DataFrame, board: pd.DataFrame, top_ids: list[str]) -> list[tuple[str, Path]]:
    """(label, sample grid) for the top trials and the best run of each baseline in the sweep."""
    dirs, out, named = trial_dirs(trials), [], labels(board)
    chosen = [(f"#{i + 1} {named.get(tid, tid)}", tid) for i, tid in enumerate(top_ids)]
    if "baseline" in board:
        for name, group in board.dropna(subset=["baseline"]).groupby("baseline"):
            tid = group.sort_values("final_fid")["trial_id"].iloc[0]
            chosen.append((f"baseline {name} ({tid})", tid))
    for label, tid in chosen:  # labels are distinct: a top trial that is also a baseline is shown twice, labelled
        png = dirs.get(tid, NOWHERE).samples_png
        if png.is_file():
            out.append((label, png))
    return out


def importances(folder: Path) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances for the sweep's study, or ({}, why not)."""
    import optuna

    from sweep.tables import DamagedTable, load_sweep_json
    from sweep.study import study_file, study_storage

    try:
        kind = load_sweep_json(folder).get("storage", "sqlite")  # the storage the sweep used
    except DamagedTable as e:
        return {}, f"Importances need the sweep's settings: {e}"
    file = study_file(kind, folder)
    if file is not None and not file.is_file():
        return {}, "No Optuna study in this sweep folder."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=folder.name, storage=study_storage(kind, folder))
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(done) < 3:
            return {}, f"Importances need at least 3 completed trials; this study has {len(done)}."
        with warnings.catch_warnings():  # "few trials per regime" warnings: the caption says how many there are
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study)), ""
    except (RuntimeError, ValueError, KeyError) as e:
        return {}, f"Importances could not be computed: {e}"
