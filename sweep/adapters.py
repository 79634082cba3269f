"""The private attributes of Ray and Optuna this project reads, each in one named function.

Where Ray or Optuna has no public API for what a searcher or the driver needs,
the attribute is read here and nowhere else; ``tests/sweep/test_adapters.py``
builds the real objects of the installed releases and fails, naming the
attribute, when a release renames or removes one.
"""

from __future__ import annotations


class ReleaseChanged(RuntimeError):
    """An installed Ray or Optuna release no longer has an attribute this project reads."""


def private(obj, name: str):
    """``obj.<name>``, or ReleaseChanged naming the class, the attribute and the module that relies on it."""
    try:
        return getattr(obj, name)
    except AttributeError:
        cls = type(obj)
        raise ReleaseChanged(
            f"{cls.__module__}.{cls.__qualname__} has no attribute {name} in this release; "
            "sweep/adapters.py relies on it: pin the Ray release it was tested with or adapt the adapter"
        ) from None


def optuna_holds(searcher, trial_id: str) -> bool:
    """Whether Ray's OptunaSearch still holds the Optuna trial of ``trial_id`` (a restored searcher may not):
    its ``_ot_trials`` maps Tune trial ids to Optuna trials; OptunaSearch has no public lookup."""
    return trial_id in private(searcher, "_ot_trials")


def optuna_trial(searcher, trial_id: str):
    """The Optuna trial Ray's OptunaSearch holds for ``trial_id``, or None (``_ot_trials``, as ``optuna_holds``)."""
    return private(searcher, "_ot_trials").get(trial_id)


def seed_group(repeater, trial_id: str):
    """The Repeater's group of ``trial_id`` (``count()``, ``report()``, ``finished_reporting()``, ``scores()``,
    ``primary_trial_id``), or None for a trial it never saw: Repeater keeps them in ``_trial_id_to_group``."""
    return private(repeater, "_trial_id_to_group").get(trial_id)


def run_config_of(tuner):
    """The run settings a Tuner will fit with: Tuner.restore takes no RunConfig, so a resumed driver replaces
    the pickled callbacks through the Tuner's internal ``_local_tuner.get_run_config()``."""
    return private(private(tuner, "_local_tuner"), "get_run_config")()


def tune_config_of(tuner):
    """The TuneConfig a Tuner will fit with (``_local_tuner._tune_config``): a restored Tuner unpickles the first
    driver's scheduler with the rungs it had at the start (none); a resumed driver replaces it there."""
    return private(private(tuner, "_local_tuner"), "_tune_config")


def asha_brackets(scheduler) -> list:
    """ASHA's brackets (``_brackets``): the objects ``_trial_info`` maps trials to."""
    return private(scheduler, "_brackets")


def asha_rungs(scheduler) -> list:
    """Each bracket's ``_rungs``: [(milestone, {trial id: recorded value}), ...]."""
    return [private(bracket, "_rungs") for bracket in asha_brackets(scheduler)]


def asha_trial_brackets(scheduler) -> dict:
    """ASHA's map from trial id to its bracket (``_trial_info``), filled by ``on_trial_add``."""
    return private(scheduler, "_trial_info")


def result_handler():
    """(class, method name) of where Tune's driver handles one reported result: the scheduler, the searcher,
    the callbacks and Tune's own bookkeeping, all for that result (``TuneController._process_trial_result``).
    ``sweep.simulate`` times it; nothing else touches it."""
    from ray.tune.execution.tune_controller import TuneController

    private(TuneController, "_process_trial_result")
    return TuneController, "_process_trial_result"


def frozen_trial_id(frozen) -> int:
    """The storage id of an Optuna FrozenTrial (``_trial_id``): what ``optuna.trial.Trial(study, id)`` takes to
    tell a RUNNING trial that a dead driver asked for (Optuna's public API reaches it only from ``ask``)."""
    return private(frozen, "_trial_id")
