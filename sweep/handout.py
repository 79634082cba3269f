"""Which configs the searcher handed out, read back from the Optuna study: a stop never loses one.

Tune saves its experiment state (its trials and the searcher's state) every few seconds and at a clean
stop. A driver that ends between a hand-out and that save (SIGKILL, a requeue that kills Ray's processes
with it, the GCS gone) comes back with a Tune that never saw the trial. The study saw it: Optuna's ``ask``
writes the trial, RUNNING, before its config reaches Tune, and the searcher writes beside it which Tune
trial got it (user attribute ``tune_trial.<k>`` for seed ``k`` of the config).

On ``--resume`` every RUNNING Optuna trial the restored searcher does not hold was handed out and never
told. Its config runs again before any new one, with the same params (Optuna returns a trial's stored
params when asked again), under the row of the trial that first got it: the Tune trial carries
``REPLAYS`` (that row's trial id and folder) and continues from the folder's last checkpoint when there
is one. Its result is told to the same Optuna trial, once. The searcher also never hands out more configs
than the sweep set out to run, counted in the study, so a finished trial that Tune lost track of is not
run again in another config's place.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from sweep.adapters import frozen_trial_id

STATES = optuna.trial.TrialState


def handed_out(study) -> int:
    """The configs the study handed out: every trial that left the queue of enqueued points."""
    return sum(t.state != STATES.WAITING for t in study.get_trials(deepcopy=False))


def params_of(frozen) -> dict:
    """A trial's params, with an enqueued point's fixed params where the driver died before they were drawn."""
    return {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}


def new_points(points: list[dict], storage, name: str) -> list[dict]:
    """The points (baselines) the study does not hold yet: a searcher made again over an existing study (its
    Tune state never saved) would otherwise enqueue every baseline a second time."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # no study of that name yet
        return list(points)
    held = [params_of(t) for t in study.get_trials(deepcopy=False)]
    return [p for p in points if not any(all(h.get(k) == v for k, v in p.items()) for h in held)]


def lost(study, held: dict) -> list:
    """RUNNING Optuna trials that no Tune trial the searcher holds (``held``: Tune id -> Optuna trial) was
    given: configs handed out by a driver that died before Tune saved them. Oldest first."""
    numbers = {t.number for t in held.values()}
    return [t for t in study.get_trials(deepcopy=False, states=(STATES.RUNNING,)) if t.number not in numbers]


def still_open(study, ot_trial) -> bool:
    """Whether ``ot_trial`` is still RUNNING in the study, that is, not told yet."""
    return any(t.number == ot_trial.number for t in study.get_trials(deepcopy=False, states=(STATES.RUNNING,)))


def reopen(study, frozen):
    """The live Optuna trial of a RUNNING ``frozen`` one: told like any trial the searcher asked for."""
    return optuna.trial.Trial(study, frozen_trial_id(frozen))


def claim(config: dict, ot_trial, k: int, trial_id: str, records: Path | None) -> dict:
    """Records that Tune trial ``trial_id`` runs seed ``k`` of ``ot_trial``'s config; when another Tune trial
    got it first (a lost hand-out run again), ``config`` gets ``REPLAYS`` naming that trial's row and folder
    (and loses any it had: a seed group's members start from a copy of its first trial's config)."""
    from sweep.trainable import REPLAYS

    key = f"tune_trial.{k}"
    first = ot_trial.user_attrs.get(key)
    config.pop(REPLAYS, None)
    if first is None:
        ot_trial.set_user_attr(key, trial_id)
    elif first != trial_id:
        config[REPLAYS] = {"trial_id": first, "dir": trial_dir(records, first)}
    return config


def trial_dir(records: Path | None, trial_id: str) -> str:
    """The folder of ``trial_id``'s last run, from its row (empty when it never started or has no row)."""
    from sweep.tables import DamagedTable, read_table

    if records is None:
        return ""
    try:
        frame = read_table(records)
    except (DamagedTable, OSError):
        return ""
    if frame.empty or "trial_dir" not in frame:
        return ""
    row = frame[frame["trial_id"].astype(str) == trial_id]
    value = row["trial_dir"].iloc[-1] if len(row) else None
    return value if isinstance(value, str) else ""
