"""How the time to write a sweep's records grows with its rows: trials.csv, the leaderboards, the study.

Rows are drawn from the space (random configs, their real config columns) with simulated results, so each
write handles the columns a real sweep's would. Timed per write, at each size:

- ``trials_csv_ms``: ``SweepTable.save(boards=False)``, what an intermediate result costs;
- ``with_boards_ms``: ``SweepTable.save()``, what a trial's end costs (trials.csv, the sweep's leaderboard,
  the merged one re-read under its lock);
- ``study_ms``: one ask, suggest and tell of seeded TPE on an SQLite study holding that many finished trials
  (what the searcher costs per trial), and as many failed ones: the draws of the rows' configs, asked on the
  same study and closed as FAIL.
"""

from __future__ import annotations

import time
from pathlib import Path

from sweep.folder import ResultsFolder
from sweep.simulate.model import SimModel
from sweep.simulate.runner import SWEEP


def fill_table(space, model: SimModel, folder: Path, rows: int):
    """A SweepTable of ``rows`` completed simulated trials of ``space`` (and the Optuna study beside it)."""
    import optuna

    from sweep.columns import config_row
    from sweep.configs import Configs
    from sweep.simulate.trial import final_row
    from sweep.tables import SweepTable

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configs = Configs(model.base)
    table = SweepTable(folder, SWEEP, space.name)
    study_db = ResultsFolder(folder).sweep(SWEEP).optuna_db
    study = optuna.create_study(
        study_name=SWEEP, storage=f"sqlite:///{study_db}", sampler=optuna.samplers.RandomSampler(0)
    )
    finished = []
    for i in range(rows):
        trial = study.ask()
        params = {**(space.define(trial) or {}), **trial.params}
        cfg = configs.of(params)
        spent = {"train": model.train_s, "eval": 0.0, "fid": model.fid_s}
        result = final_row(model, params, i, spent)
        fields = {**config_row(params, cfg), "config_hash": cfg.config_hash(), **result}
        table.update(f"sim_{i:05d}", status="completed", started_at="", finished_at=f"{i:08d}", **fields)
        finished.append(optuna.trial.create_trial(params=trial.params, distributions=trial.distributions,
                                                  value=result["final_fid"]))  # fmt: skip
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # the probe trial itself
    study.add_trials(finished)
    return table, study


def time_writes(space, model: SimModel, root: Path, sizes: list[int], repeat: int = 3) -> list[dict]:
    """Milliseconds per write at each number of rows (the best of ``repeat``)."""
    import optuna

    out = []
    for n in sizes:
        folder = root / f"rows-{n}"
        ResultsFolder(folder).sweep(SWEEP).path.mkdir(parents=True)
        table, study = fill_table(space, model, folder, n)
        study.sampler = optuna.samplers.TPESampler(seed=0)
        row = {"rows": n}
        for name, write in (("trials_csv_ms", lambda: table.save(boards=False)), ("with_boards_ms", table.save)):
            row[name] = _best_ms(write, repeat)

        def one_trial():
            trial = study.ask()
            space.define(trial)
            study.tell(trial, 50.0)

        row["study_ms"] = _best_ms(one_trial, repeat)
        out.append(row)
    return out


def _best_ms(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1000 * best
