"""What Optuna and the scheduler see of a sweep: the searchers that wrap OptunaSearch, and ASHA.

Ray and Optuna have no public API for three things these need (whether
OptunaSearch still holds a trial, a Repeater's group of a trial, a restored
Tuner's run settings): each is read through one adapter in ``sweep.adapters``,
tested against the installed releases.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import optuna
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter, Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch

from sweep import handout, signals
from sweep.adapters import asha_brackets, asha_rungs, asha_trial_brackets, optuna_holds, optuna_trial, seed_group
from sweep.columns import FAILED
from sweep.design import SobolSampler
from sweep.folder import SweepFolder
from sweep.study import study_storage

METRIC = "final_fid"  # what Optuna minimises by default; ASHA-stopped trials have none and are PRUNED there
EARLY_METRIC = "intermediate_fid"  # what ASHA compares
COST = "gpu_seconds"  # the second objective of --objectives fid,cost


def _grouped_tpe(seed: int):
    """TPE modelling each branch of a conditional space jointly (``group``; experimental in Optuna 5.0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, group=True)


# Optuna 5.0's TPE defaults: multivariate for one objective, constant liar for trials still running
SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "tpe-group": _grouped_tpe,
    "sobol": SobolSampler,  # a space-filling design (sweep.design): what sweep.simulate landscape runs
}
HYPERBAND_BRACKETS = 3  # --scheduler hyperband: ASHA's asynchronous Hyperband (Li et al. 2020, section 3.3)


class FinalOnlyOptunaSearch(OptunaSearch):
    """OptunaSearch told final results as values and intermediate FIDs as intermediate values.

    Why not the stock searcher with one metric name for every FID report (tried for
    the "one place per idea" issue): its on_trial_result reads ``result[metric]``
    and raises on a trial's own failure, which is reported as data with no FID
    (never a fake one), and its on_trial_complete raises on a trial id a restored
    searcher does not know (tests/sweep/test_sweep.py shows both).

    Intermediate reports carry ``intermediate_fid`` (for ASHA) at ``step``: each
    reaches the Optuna trial as ``report(value, step)``. A trial ASHA stops ends
    PRUNED with those values, and TPE ranks pruned trials by how far they got,
    then by what they scored there (Optuna's ``_get_pruned_trial_score``); without
    them a stopped trial would rank last, whatever it scored. Multi-objective
    studies take no intermediate values (Optuna has none for them). A result for
    a trial Optuna already closed (replayed after a resume) is dropped.

    Configs handed out and lost to a stop before Tune saved them run again first, and the searcher hands
    out at most ``budget`` configs in all, counted in the study (``sweep.handout``).
    """

    intermediate = True  # False: stopped trials reach Optuna with no value (what sweep.simulate compares
    # with); class defaults, so a searcher pickled before a setting existed restores with it
    budget: int | None = None  # configs the sweep set out to run
    records: Path | None = None  # its trials.csv: where a lost config's first row and folder are read
    resumed = False

    def __init__(self, *args, intermediate: bool = True, budget=None, records=None, resume=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.intermediate, self.budget, self.records = intermediate, budget, records
        self.resumed = resume  # the study may know more than this searcher: read it (a fresh sweep's does not)
        self._replays = handout.lost(self._ot_study, self._ot_trials) if resume else []

    def restore(self, checkpoint_path: str):
        super().restore(checkpoint_path)
        self.resumed = True
        self._replays = handout.lost(self._ot_study, self._ot_trials)  # the study knows more than the snapshot

    def suggest(self, trial_id: str):
        if self._replays:  # a config handed out before a stop that Tune never saved: again, before any new one
            self._ot_trials[trial_id] = handout.reopen(self._ot_study, self._replays.pop(0))
        elif self.resumed and self.budget and handout.handed_out(self._ot_study) >= self.budget:
            return Searcher.FINISHED
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            handout.claim(config, self._ot_trials[trial_id], 0, trial_id, self.records)
        return config

    def on_trial_result(self, trial_id: str, result: dict):
        if not self.intermediate:
            return None
        value, step = result.get(EARLY_METRIC), result.get("step")
        trial = optuna_trial(self, trial_id)
        if trial is None or isinstance(self.metric, list) or not _finite(value) or not isinstance(step, int):
            return None
        try:
            with warnings.catch_warnings():  # a resumed trial sends its last result again: Optuna ignores it
                warnings.simplefilter("ignore")
                trial.report(float(value), step)
        except optuna.exceptions.UpdateFinishedTrialError:
            return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if result and result.get("status") in FAILED:  # the trial's own failure, reported as data
            result, error = None, True
        if result and not error:
            # Tune hands the result a scheduler stops a trial on to on_trial_complete only, never to
            # on_trial_result (Ray 2.60, TuneController._process_trial_result): it is the trial's last
            # intermediate value, the one that ranks it, so it is reported here
            self.on_trial_result(trial_id, result)
        # unknown after some restores, or told already (a trial restored after its end reports it again)
        held = optuna_holds(self, trial_id)
        if held and (not self.resumed or handout.still_open(self._ot_study, optuna_trial(self, trial_id))):
            super().on_trial_complete(trial_id, result, error)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class SeedGroups(Repeater):
    """Runs every suggested config on ``repeat`` seeds (base seed + 0 .. repeat - 1) and tells the searcher their mean.

    Ray's Repeater averages with nanmean, which drops a failed seed silently;
    here a group with any failed seed is told as failed (Optuna FAIL), never as
    the mean of the rest. The seed goes into the trial's config as ``seed``, so
    it is a column of its own. Groups are saved with the searcher, so a resumed
    sweep keeps counting them.
    """

    def __init__(self, searcher, repeat: int, base_seed: int):
        super().__init__(searcher, repeat=repeat, set_index=False)
        self.base_seed = base_seed

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            group = seed_group(self, trial_id)
            k = group.count() - 1
            config["seed"] = self.base_seed + k
            ot_trial = optuna_trial(self.searcher, group.primary_trial_id)
            if k > 0 and ot_trial is not None:  # the group's first trial claimed seed 0 in the searcher
                handout.claim(config, ot_trial, k, trial_id, self.searcher.records)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False, **kwargs):
        group = seed_group(self, trial_id)
        if group is None:  # a trial of a group this searcher never saw (restored without its state)
            return
        metrics = self.searcher.metric if isinstance(self.searcher.metric, list) else [self.searcher.metric]
        ok = not error and result is not None and all(m in result for m in metrics)  # a failed status has none
        group.report(trial_id, tuple(result[m] for m in metrics) if ok else "failed")
        if group.finished_reporting():
            scores = group.scores()
            if "failed" in scores:
                self.searcher.on_trial_complete(group.primary_trial_id, result=None, error=True)
            else:
                means = [sum(s[i] for s in scores) / len(scores) for i in range(len(metrics))]
                self.searcher.on_trial_complete(group.primary_trial_id, result=dict(zip(metrics, means)))

    def save(self, checkpoint_path: str):
        import pickle

        super().save(checkpoint_path)
        with open(f"{checkpoint_path}.groups", "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str):
        import pickle

        super().restore(checkpoint_path)
        groups = Path(f"{checkpoint_path}.groups")
        if groups.is_file():
            self.set_state(pickle.loads(groups.read_bytes()))


def close_orphans(storage, name: str) -> int:
    """Once every trial has ended, an Optuna trial still RUNNING is a hand-out no Tune trial ran (a resumed
    searcher runs every lost one again first: ``sweep.handout``): it is closed as FAIL, with a warning naming
    it, so the study keeps no stale row and nothing is hidden."""
    study = optuna.load_study(study_name=name, storage=storage)
    orphans = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    for t in orphans:
        print(f"warning: Optuna trial {t.number} ({handout.params_of(t)}) was handed out and never run; closed as FAIL")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return len(orphans)


def make_searcher(space, folder: Path, name: str, settings: dict, max_concurrent: int | None, resume: bool = False):
    """Seeded search over the space by ``settings["sampler"]`` (``SAMPLERS``; TPE where a sweep.json predates the
    setting: those sweeps ran TPE); with ``objectives`` fid,cost a multi-objective study (TPE's form: MOTPE).

    ``settings`` may also set ``intermediate`` False (stopped trials tell Optuna nothing): ``sweep.simulate``
    compares it. ``resume``: a study of that name may hold this sweep's hand-outs already (``sweep.handout``).

    MOTPE rather than NSGA-II: NSGA-II evolves populations of ~50 per
    generation, more trials than most sweeps here run; TPE models every trial.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = study_storage(settings.get("storage", "sqlite"), folder)
    metric = settings["metric"]
    multi = settings["objectives"] == "fid,cost"
    searcher = FinalOnlyOptunaSearch(
        space=space.define,
        metric=[metric, COST] if multi else metric,
        mode=["min", "min"] if multi else "min",
        points_to_evaluate=handout.new_points(space.points, storage, name) or None,
        sampler=SAMPLERS[settings.get("sampler", "tpe")](seed=settings["seed"]),
        storage=storage,
        study_name=name,
        intermediate=settings.get("intermediate", True),
        budget=settings["trials"],
        records=SweepFolder(folder).trials_csv,
        resume=resume,
    )
    if settings["seeds"] > 1:
        searcher = SeedGroups(searcher, settings["seeds"], settings["seed"])
    total = settings["trials"] * settings["seeds"]
    return Interruptible(searcher, max_concurrent=max_concurrent or total)


class Interruptible(ConcurrencyLimiter):
    """The outermost searcher (a concurrency limit of all trials when none is asked for).

    While the driver stops on a signal, a trial that ends without its final
    result was interrupted, not failed: nobody is told (neither this limit nor
    the searchers it wraps), so after ``--resume`` the trial continues under
    its id and its Optuna trial, still RUNNING, is told once, when it ends.
    """

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if signals.stopping() and not (result and METRIC in result):
            return
        super().on_trial_complete(trial_id, result=result, error=error)


class BaselineSafeASHA(ASHAScheduler):
    """ASHA that never stops a known baseline (the leaderboard's reference must finish), with rungs that outlive
    the driver.

    Ray saves no scheduler state with an experiment: a restored Tuner starts ASHA with empty rungs, which
    then stops fewer trials after a resume. Every value ASHA records in a rung is appended to ``rungs_path``
    (one JSON line: bracket, milestone, trial, value) as it is recorded, and a resumed driver's scheduler
    starts from that file. A line that is not a complete record (a driver killed mid-write) is skipped.
    """

    def __init__(self, space, rungs_path: Path | None = None, resume: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.space, self.rungs_path, self.logged = space, rungs_path, set()
        self.skipped = 0  # damaged lines of the rungs file
        if rungs_path is not None and resume:
            self._load()
        elif rungs_path is not None and rungs_path.exists():
            rungs_path.unlink()  # a fresh start owns its file

    def on_trial_result(self, tune_controller, trial, result):
        self._place(trial.trial_id)
        decision = super().on_trial_result(tune_controller, trial, result)  # keeps ASHA's rung bookkeeping
        self._log(trial.trial_id)
        if self.space.baseline_of(trial.config) is not None:
            return self.CONTINUE
        return decision

    def on_trial_complete(self, tune_controller, trial, result):
        self._place(trial.trial_id)
        super().on_trial_complete(tune_controller, trial, result)
        self._log(trial.trial_id)

    def on_trial_remove(self, tune_controller, trial):
        asha_trial_brackets(self).pop(trial.trial_id, None)

    def _place(self, trial_id: str) -> None:
        """A trial the scheduler never saw added (restored) goes to the bracket that recorded it, else the first."""
        placed = asha_trial_brackets(self)
        if trial_id not in placed:
            brackets = asha_brackets(self)
            known = [b for b, rungs in zip(brackets, asha_rungs(self)) if any(trial_id in rec for _, rec in rungs)]
            placed[trial_id] = (known or brackets)[0]

    def _log(self, trial_id: str) -> None:
        if self.rungs_path is None:
            return
        lines = []
        for b, rungs in enumerate(asha_rungs(self)):
            for milestone, recorded in rungs:
                key = (b, milestone, trial_id)
                if trial_id in recorded and key not in self.logged:
                    self.logged.add(key)
                    record = {"bracket": b, "milestone": milestone, "trial": trial_id, "value": recorded[trial_id]}
                    lines.append(json.dumps(record) + "\n")
        if lines:
            with open(self.rungs_path, "a") as f:
                f.writelines(lines)
                f.flush()
                os.fsync(f.fileno())

    def _load(self) -> None:
        if not self.rungs_path.is_file():
            return
        brackets = asha_rungs(self)
        for line in self.rungs_path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
                if not isinstance(rec["bracket"], int) or rec["bracket"] < 0:
                    raise ValueError(rec["bracket"])
                rung = dict(brackets[rec["bracket"]])[rec["milestone"]]
                value = float(rec["value"])
                trial_id = str(rec["trial"])
            except (ValueError, KeyError, IndexError, TypeError):
                self.skipped += 1
                continue
            rung[trial_id] = value
            self.logged.add((rec["bracket"], rec["milestone"], trial_id))


def make_scheduler(kind: str, cfg, space, rungs_path: Path | None = None, resume: bool = False):
    """FIFO, or ASHA on intermediate FIDs at ``cfg``'s evaluation steps (``cfg``: the sweep's base TrainConfig).

    With ``rungs_path`` ASHA writes its rungs there, and with ``resume`` it starts from what is written.
    """
    if kind == "none":
        return FIFOScheduler()
    if not cfg.eval_every:
        raise ValueError("--scheduler asha needs intermediate FIDs, but this preset has eval_every = 0")
    return BaselineSafeASHA(
        space,
        rungs_path,
        resume,
        time_attr="step",
        metric=EARLY_METRIC,
        mode="min",
        max_t=cfg.steps,
        grace_period=cfg.eval_every,
        reduction_factor=2,
        brackets=HYPERBAND_BRACKETS if kind == "hyperband" else 1,
    )
