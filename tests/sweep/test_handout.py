"""A config the searcher handed out is never lost: the searcher reads the study back (sweep.handout).

These drive the real searcher stack (Optuna's study in SQLite, Ray's OptunaSearch, the seed groups and the
concurrency limit) without Tune: a driver that dies between a hand-out and Tune's save is a searcher made
again (or restored from an older snapshot) over the same study. test_stops.py does it through real drivers.
"""

from __future__ import annotations

import optuna
import pytest
from ray.tune.search import Searcher

from search_spaces import SPACES
from sweep.search import make_searcher
from sweep.trainable import REPLAYS, row_id

STATES = optuna.trial.TrialState


def settings(trials: int, seeds: int = 1) -> dict:
    return {"trials": trials, "seeds": seeds, "seed": 0, "metric": "final_fid", "objectives": "fid"}


def searcher(folder, trials: int, seeds: int = 1, resume: bool = False):
    return make_searcher(SPACES["baselines"], folder, "s", settings(trials, seeds), None, resume)


def study(folder):
    return optuna.load_study(study_name="s", storage=f"sqlite:///{folder / 'optuna.db'}")


def key(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != REPLAYS}


def test_a_config_lost_with_its_driver_runs_again_first_under_its_row_and_is_told_once(tmp_path):
    first = searcher(tmp_path, trials=3)
    a, b = first.suggest("a"), first.suggest("b")  # handed out; the driver dies before Tune saves anything
    again = searcher(tmp_path, trials=3, resume=True)  # no Tune state: a searcher made anew over the study
    c, d = again.suggest("c"), again.suggest("d")
    assert (key(c), key(d)) == (a, b)  # the same configs, in the order they were handed out
    assert (row_id("c", c), row_id("d", d)) == ("a", "b")  # each under its first trial's row
    e = again.suggest("e")
    assert key(e) not in (a, b) and REPLAYS not in e  # the next baseline, not a second copy of one
    for trial_id, fid in (("c", 3.0), ("d", 2.0), ("e", 1.0)):
        again.on_trial_complete(trial_id, {"final_fid": fid})
    assert again.suggest("f") == Searcher.FINISHED  # three configs, as the sweep set out to run
    trials = study(tmp_path).trials
    assert [t.state for t in trials if t.state != STATES.WAITING] == [STATES.COMPLETE] * 3
    assert [t.value for t in trials if t.state == STATES.COMPLETE] == [3.0, 2.0, 1.0]  # told once each
    assert sorted(t.params["objective"] for t in trials if t.params) == sorted(c["objective"] for c in (a, b, e))


def test_a_restored_snapshot_runs_again_only_what_it_never_saw(tmp_path):
    first = searcher(tmp_path, trials=3)
    a = first.suggest("a")
    first.save(str(tmp_path / "snapshot"))  # Tune's last save: it holds trial a
    b = first.suggest("b")  # handed out after it
    restored = searcher(tmp_path, trials=3)
    restored.restore(str(tmp_path / "snapshot"))
    c = restored.suggest("c")
    assert key(c) == b and row_id("c", c) == "b"  # b again, first; a continues in Tune under its own id
    d = restored.suggest("d")
    assert key(d) not in (a, b)
    restored.on_trial_complete("c", {"final_fid": 1.0})
    assert restored.suggest("e") == Searcher.FINISHED


def test_every_seed_of_a_lost_group_keeps_its_row(tmp_path):
    first = searcher(tmp_path, trials=2, seeds=2)
    a0, a1 = first.suggest("a0"), first.suggest("a1")
    assert (a0["seed"], a1["seed"]) == (0, 1) and a0["objective"] == a1["objective"]
    again = searcher(tmp_path, trials=2, seeds=2, resume=True)
    b0, b1 = again.suggest("b0"), again.suggest("b1")
    assert [(key(x), row_id(i, x)) for i, x in (("b0", b0), ("b1", b1))] == [(a0, "a0"), (a1, "a1")]
    again.on_trial_complete("b0", {"final_fid": 2.0})
    again.on_trial_complete("b1", {"final_fid": 4.0})
    done = [t for t in study(tmp_path).trials if t.state == STATES.COMPLETE]
    assert [t.value for t in done] == [3.0]  # the group's mean, told once to the trial that was lost


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_a_searcher_made_again_enqueues_no_baseline_twice(tmp_path, storage):
    config = {**settings(4), "storage": storage}
    make_searcher(SPACES["baselines"], tmp_path, "s", config, None).suggest("a")
    again = make_searcher(SPACES["baselines"], tmp_path, "s", config, None, True)
    handed = [key(again.suggest(t)) for t in "bcde"]
    assert len({tuple(sorted(h.items())) for h in handed}) == 4  # every baseline once: a again, then the rest
    assert {h["objective"] for h in handed} == {"pureflow", "meanflow", "alphaflow", "meanflow_cifar"}
    from sweep.study import study_storage

    held = optuna.load_study(study_name="s", storage=study_storage(storage, tmp_path)).trials
    assert len(held) == 4 and all(t.state == STATES.RUNNING for t in held)  # none enqueued twice


def test_a_lost_trial_continues_from_the_newest_checkpoint_its_folder_holds(tmp_path):
    from sweep.trainable import last_checkpoint

    for name, with_file in (("checkpoint_000000", True), ("checkpoint_000002", True), ("checkpoint_000003", False)):
        (tmp_path / name).mkdir()
        if with_file:  # a checkpoint folder cut before its file landed is not one
            (tmp_path / name / "checkpoint.pt").write_bytes(b"x")
    assert last_checkpoint(str(tmp_path)).path == str(tmp_path / "checkpoint_000002")
    assert last_checkpoint("") is None and last_checkpoint(str(tmp_path / "none")) is None


def test_the_summary_names_what_was_handed_out_and_not_finished(tmp_path, capsys):
    from sweep.driver import summarize
    from sweep.tables import SweepTable

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(
        '{"name": "s", "space": "baselines", "preset": "smoke", "base": {"preset": "smoke"}, "trials": 3}'
    )
    table = SweepTable(tmp_path, "s", "baselines")
    table.update("a1", status="completed", baseline="pureflow", final_fid=5.0, config_hash="h", seed=0, fid_kind="k")
    table.update("b2", status="interrupted", baseline="meanflow")
    table.save()
    assert summarize(tmp_path / "s", "s", 3) == 130
    out = capsys.readouterr().out
    assert "s: 1 completed, 0 failed, 0 stopped early, 1 not finished, of 3" in out
    assert "not finished: meanflow (b2, interrupted)" in out and "not started: baseline alphaflow" in out
