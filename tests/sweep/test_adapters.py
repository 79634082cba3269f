"""The private attributes of Ray and Optuna read in sweep/adapters.py exist in the installed releases.

Each test builds the real object; a release that renames or removes an attribute fails here with
ReleaseChanged naming it, before any sweep meets it.
"""

import optuna
import pytest
from ray import tune
from ray.tune.search import Repeater
from ray.tune.search.optuna import OptunaSearch

from sweep.adapters import (
    ReleaseChanged,
    asha_brackets,
    asha_rungs,
    asha_trial_brackets,
    frozen_trial_id,
    optuna_holds,
    optuna_trial,
    private,
    run_config_of,
    seed_group,
)


def searcher():
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    return OptunaSearch(space=space, metric="fid", mode="min")


def test_optuna_search_holds_its_trials_by_tune_id():
    s = searcher()
    s.suggest("t1")
    assert optuna_holds(s, "t1") and not optuna_holds(s, "t2")
    assert isinstance(optuna_trial(s, "t1"), optuna.trial.Trial) and optuna_trial(s, "t2") is None


def test_a_frozen_trial_has_the_storage_id_a_live_trial_is_made_from():
    study = optuna.create_study()
    asked = study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    again = optuna.trial.Trial(study, frozen_trial_id(frozen))
    assert again.number == asked.number
    again.suggest_float("x", 0, 1)
    assert asked.params == again.params  # the same trial in storage


def test_a_repeater_groups_trials_and_its_groups_have_what_seed_groups_reads():
    r = Repeater(searcher(), repeat=2, set_index=False)
    r.suggest("a")
    r.suggest("b")
    group = seed_group(r, "b")
    assert group is seed_group(r, "a") and seed_group(r, "c") is None
    assert group.count() == 2 and group.primary_trial_id == "a"
    group.report("a", 1.0)
    assert not group.finished_reporting()
    group.report("b", 3.0)
    assert group.finished_reporting() and list(group.scores()) == [1.0, 3.0]


def test_a_tuners_run_settings_can_be_replaced():
    tuner = tune.Tuner(lambda config: None, run_config=tune.RunConfig(name="x", verbose=0))
    config = run_config_of(tuner)
    assert isinstance(config, tune.RunConfig) and config.name == "x"
    config.callbacks = []
    assert run_config_of(tuner).callbacks == []


def test_a_missing_attribute_is_named():
    with pytest.raises(ReleaseChanged, match=r"builtins.object has no attribute _ot_trials in this release"):
        private(object(), "_ot_trials")


def test_asha_has_the_brackets_rungs_and_trial_map_the_rungs_file_reads():
    from types import SimpleNamespace

    from ray.tune.schedulers import ASHAScheduler

    asha = ASHAScheduler(time_attr="step", metric="fid", mode="min", max_t=40, grace_period=10, reduction_factor=2)
    trial = SimpleNamespace(trial_id="t1")
    asha.on_trial_add(None, trial)
    asha.on_trial_result(None, trial, {"step": 10, "fid": 3.0})
    (bracket,) = asha_brackets(asha)
    assert asha_trial_brackets(asha)["t1"] is bracket
    assert [m for m, _ in asha_rungs(asha)[0]] == [40, 20, 10] and asha_rungs(asha)[0][-1][1] == {"t1": -3.0}


def test_result_handler_is_tunes_per_result_method():
    from ray.tune.execution.tune_controller import TuneController

    from sweep.adapters import result_handler

    owner, name = result_handler()
    assert owner is TuneController and callable(getattr(owner, name))
    # sweep.simulate wraps it as handler(controller, trial, result): the release's signature
    import inspect

    assert list(inspect.signature(getattr(owner, name)).parameters)[:3] == ["self", "trial", "result"]
