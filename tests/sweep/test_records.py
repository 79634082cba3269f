"""The results table without Ray: ranking, merging, atomic and concurrent writes."""

import multiprocessing as mp
import random

import pandas as pd
import pytest

from sweep.progress import last_line
from sweep.ranking import PROTOCOL_FID_KIND, rank
from sweep.tables import SweepTable, merge_leaderboards


def _row(i, fid, kind="standin/synthetic/512/euler10", status="completed", baseline=None, seed=0):
    return {
        "trial_id": f"t{i}",
        "status": status,
        "final_fid": fid,
        "fid_kind": kind,
        "baseline": baseline,
        "config_hash": f"h{i}",
        "config.seed": seed,
        "finished_at": f"2026-01-01T00:00:{i:02d}",
    }


def test_rank_orders_within_each_fid_kind_and_skips_unfinished():
    frame = pd.DataFrame(
        [
            _row(1, 5.0),
            _row(2, 3.0, baseline="meanflow"),
            _row(3, None, status="diverged"),
            _row(4, 40.0, kind=PROTOCOL_FID_KIND),
            _row(5, 45.0, kind=PROTOCOL_FID_KIND),
            _row(6, 1.0, status="error"),
        ]
    )
    board = rank(frame)
    assert list(board["trial_id"]) == ["t4", "t5", "t2", "t1"]
    assert list(board["rank"]) == [1, 2, 1, 2]
    # protocol kind without a measured meanflow: the reference 41.81; stand-in kind: the measured baseline
    assert list(board["delta_vs_meanflow"].round(6)) == [round(40.0 - 41.81, 6), round(45.0 - 41.81, 6), 0.0, 2.0]


def _write_sweep(args):
    results, name, n = args
    table = SweepTable(results, name, "baselines")
    for i in range(n):
        table.update(
            f"{name}-{i}",
            status="completed",
            final_fid=random.random(),
            fid_kind="k",
            config_hash=f"{name}-{i}",
            **{"config.seed": 0},
            finished_at=f"x{i}",
        )
        table.save()
    return n


def test_concurrent_sweeps_do_not_lose_rows_in_the_merged_leaderboard(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_write_sweep, [(tmp_path, f"s{k}", 6) for k in range(4)])
    merged = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(merged) == 24 and list(merged["rank"]) == list(range(1, 25))
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind


def test_merge_counts_the_same_config_and_seed_once(tmp_path):
    for name in ("a", "b"):
        table = SweepTable(tmp_path, name, "baselines")
        table.update(
            "t1",
            status="completed",
            final_fid=4.0 if name == "a" else 3.0,
            fid_kind="k",
            config_hash="same",
            **{"config.seed": 0},
            finished_at=name,
        )
        table.save()
    merged = merge_leaderboards(tmp_path)
    assert len(merged) == 1 and merged["sweep"].item() == "a"  # the first finish counts


def test_a_sweeps_board_and_the_merged_board_agree_on_a_repeated_config_and_seed(tmp_path):
    table = SweepTable(tmp_path, "a", "baselines")
    for trial_id, fid, finished in (("t1", 4.0, "1"), ("t2", 3.0, "2"), ("t3", 5.0, "3")):
        config = "same" if trial_id != "t3" else "other"  # t2 reruns t1's config on its seed
        fields = {"status": "completed", "final_fid": fid, "fid_kind": "k", "config_hash": config, "config.seed": 0}
        table.update(trial_id, **fields, finished_at=finished)
    table.save()
    board = pd.read_csv(tmp_path / "a" / "leaderboard.csv")
    merged = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(board["trial_id"]) == list(merged["trial_id"]) == ["t1", "t3"]
    assert list(board["rank"]) == [1, 2]


@pytest.mark.parametrize(
    "text, line",
    [
        ("Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", "KeyError: 'x'"),
        (
            "ray.exceptions.ActorDiedError: The actor died unexpectedly\n\n",
            "ray.exceptions.ActorDiedError: The actor died unexpectedly",
        ),
        (None, "unknown error"),
    ],
)
def test_an_infrastructure_error_is_recorded_by_its_last_line(text, line):
    """Status is data (a trial's own failures report it); only infrastructure errors reach this, as 'error'."""
    assert last_line(text) == line


def test_config_columns_are_the_prefixed_ones_and_rebuild_a_config():
    """Only ``config.`` columns reach a config (confirm and the report rebuild configs from rows); a measurement
    named like a config key (fid_samples, step) stays a measurement."""
    import pandas as pd

    from sweep.columns import param_columns, row_params
    from trainer.config import from_flat

    row = {
        "trial_id": "t", "status": "completed", "restarts": 1, "trial_dir": "/x", "gpus": 0.0, "step": 20,
        "intermediate_fid_10": 4.0, "final_fid_nfe1": 5.0, "fid_kind_nfe1": "k", "config_hash": "h",
        "error": "", "diverged_step": 1, "baseline": "meanflow", "best_intermediate_fid": 4.0, "fid_samples": 64,
        "config.objective": "meanflow", "config.ratio_fm.value": 0.75, "config.steps": 20.0,
        "config.dyadic_levels": 7.0, "config.seed": 3.0,
    }  # fmt: skip
    assert param_columns(pd.DataFrame(columns=list(row))) == [
        "config.dyadic_levels", "config.objective", "config.ratio_fm.value", "config.seed", "config.steps",
    ]  # fmt: skip
    params = row_params(row)
    assert params == {"dyadic_levels": 7, "objective": "meanflow", "ratio_fm.value": 0.75, "seed": 3, "steps": 20}
    assert from_flat(params).seed == 3  # a valid config: 7.0 from the CSV is back to an int


def test_config_and_measurement_names_never_collide():
    from sweep.columns import CONFIG, column_types, config_types, measured

    types, config = column_types(), config_types()
    assert config and all(c.startswith(CONFIG) for c in config)
    assert not any(c.startswith(CONFIG) for c in types if c not in config)  # nothing else carries the prefix
    assert set(measured()) <= set(types) and "fid_samples" in measured() and "config.fid_samples" in config


def test_a_table_written_before_the_prefix_is_read_with_its_config_columns_renamed(tmp_path):
    """Old sweeps' trials.csv: config keys were bare columns, and seed and steps sat among the measurements."""
    from sweep.columns import row_params
    from sweep.tables import read_table

    old = pd.DataFrame(
        [
            {
                "trial_id": "t1", "status": "completed", "objective": "meanflow", "ratio_fm.value": 0.5,
                "final_fid": 3.0, "fid_kind": "k", "fid_samples": 64, "steps": 20, "step": 20, "seed": 4,
                "config_hash": "h", "gpu": "cpu", "intermediate_fid_10": 4.0, "final_fid_nfe1": 5.0,
            }
        ]
    )  # fmt: skip
    old.to_csv(tmp_path / "trials.csv", index=False)
    frame = read_table(tmp_path / "trials.csv")
    assert {"config.objective", "config.ratio_fm.value", "config.steps", "config.seed"} <= set(frame.columns)
    assert {"fid_samples", "step", "final_fid", "gpu", "intermediate_fid_10", "final_fid_nfe1"} <= set(frame.columns)
    params = row_params(frame.to_dict("records")[0])
    assert params == {"objective": "meanflow", "ratio_fm.value": 0.5, "steps": 20, "seed": 4}


class _Trial:
    """What the records callback reads of a Tune trial."""

    def __init__(self, trial_id, config, path, last_result=None):
        self.trial_id, self.config, self.path, self.last_result = trial_id, config, path, last_result


def test_a_new_measurement_reaches_trials_csv_the_boards_the_report_and_confirm(tmp_path, monkeypatch):
    """One field added to the trial's record, nothing else edited: it is a numeric column of trials.csv, the
    sweep's and the merged leaderboard, the report's table, and never a config key for sweep.confirm."""
    import dataclasses
    import json

    import trainer.result
    from search_spaces import SPACES
    from sweep.configs import Configs
    from sweep.confirm import configs_to_confirm
    from sweep.progress import RecordsCallback
    from sweep.report import build
    from sweep.tables import read_table
    from sweep.trainable import final_result

    extended = dataclasses.make_dataclass(
        "TrialResult", [("sharpness", float, dataclasses.field(default=0.0))], bases=(trainer.result.TrialResult,),
        frozen=True,
    )  # fmt: skip
    monkeypatch.setattr(trainer.result, "TrialResult", extended)
    base = {"preset": "smoke", "steps": 20, "seed": 0}
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps({"space": "baselines", "preset": "smoke", "base": base}))
    table, configs = SweepTable(tmp_path, "s", "baselines"), Configs(base)
    callback = RecordsCallback(table, SPACES["baselines"], 2, configs, quiet=True)
    for i, objective in enumerate(("meanflow", "pureflow")):
        params = {"objective": objective, "seed": 0}
        cfg = configs.of(params)
        record = extended(
            final_fid=3.0 + i, fid_kind="k", fid_samples=64, best_intermediate_fid=None, final_loss=1.0,
            final_mse=1.0, final_fm_mse=1.0, train_seconds=2.0, eval_seconds=0.0, fid_seconds=1.0,
            wall_seconds=3.0, step_ms=100.0, gpu="cpu", config_hash=cfg.config_hash(), protocol_version=2,
            versions="{}", final_fid_nfe={1: 9.0 + i}, fid_kind_nfe={1: "k1"}, sharpness=0.5 + i,
        )  # fmt: skip
        trial = _Trial(f"t{i}", params, str(tmp_path / f"t{i}"))
        callback.on_trial_start(0, [], trial)
        trial.last_result = {**final_result(record, cfg, 0.0), "config": params, "time_this_iter_s": 1.0}
        callback.on_trial_complete(0, [], trial)
    callback.on_experiment_end([])  # as Tune ends the run: the boards catch up

    trials = read_table(folder / "trials.csv")
    assert list(trials["sharpness"]) == [0.5, 1.5] and "time_this_iter_s" not in trials
    assert list(trials["final_fid_nfe1"]) == [9.0, 10.0] and list(trials["config.objective"]) == [
        "meanflow",
        "pureflow",
    ]
    for board in (folder / "leaderboard.csv", tmp_path / "leaderboard.csv"):
        assert list(pd.read_csv(board)["sharpness"]) == [0.5, 1.5], board
    (folder / "trials.csv").write_text((folder / "trials.csv").read_text().replace(",0.5,", ",oops,", 1))
    with pytest.raises(ValueError, match="column sharpness holds 'oops', not a number"):
        read_table(folder / "trials.csv")  # a measurement is checked as a number: its type comes from the record
    table.save()  # rewritten from the rows in memory
    assert "<th>sharpness</th>" in build(folder).read_text()
    planned = configs_to_confirm(folder, SPACES["baselines"], configs, top=1)
    assert all("sharpness" not in c["params"] for c in planned)  # a measurement never becomes a config key


def test_starts_and_ends_are_written_at_once_progress_and_boards_within_their_intervals(tmp_path, monkeypatch):
    """A trial's start and end reach trials.csv at once; an intermediate FID within PROGRESS_EVERY_S (on the
    driver loop's next step); the boards within BOARDS_EVERY_S of a trial's end, and at the end of the run."""
    import sweep.progress as progress
    from search_spaces import SPACES
    from sweep.configs import Configs
    from sweep.progress import BOARDS_EVERY_S, PROGRESS_EVERY_S, RecordsCallback

    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    base = {"preset": "smoke", "steps": 20, "seed": 0}
    (tmp_path / "s").mkdir()
    table = SweepTable(tmp_path, "s", "baselines")
    callback = RecordsCallback(table, SPACES["baselines"], 2, Configs(base), quiet=True)
    trials_csv, board = tmp_path / "s" / "trials.csv", tmp_path / "s" / "leaderboard.csv"

    def on_disk(trial_id):
        frame = pd.read_csv(trials_csv)
        return frame[frame["trial_id"] == trial_id].iloc[0].to_dict()

    def finish(trial, fid):
        trial.last_result = {"final_fid": fid, "fid_kind": "k", "config_hash": trial.trial_id, "step": 20}
        callback.on_trial_complete(0, [], trial)

    a = _Trial("a", {"objective": "meanflow", "seed": 0}, str(tmp_path / "a"))
    callback.on_trial_start(0, [], a)
    assert on_disk("a")["status"] == "running"
    clock[0] += 0.5
    callback.on_trial_result(0, [], a, {"step": 10, "intermediate_fid": 7.0})
    callback.on_step_end(0, [])
    assert pd.isna(on_disk("a").get("step"))  # not yet: within PROGRESS_EVERY_S of the last write
    clock[0] += PROGRESS_EVERY_S
    callback.on_step_end(0, [])
    assert on_disk("a")["step"] == 10 and on_disk("a")["intermediate_fid_10"] == 7.0
    finish(a, 5.0)
    assert on_disk("a")["status"] == "completed" and list(pd.read_csv(board)["trial_id"]) == ["a"]
    b = _Trial("b", {"objective": "pureflow", "seed": 0}, str(tmp_path / "b"))
    clock[0] += 1.0
    callback.on_trial_start(0, [], b)
    finish(b, 4.0)
    assert on_disk("b")["status"] == "completed"  # the end at once
    assert list(pd.read_csv(board)["trial_id"]) == ["a"]  # the boards within BOARDS_EVERY_S
    clock[0] += BOARDS_EVERY_S
    callback.on_step_end(0, [])
    assert list(pd.read_csv(board)["trial_id"]) == ["b", "a"]
    c = _Trial("c", {"objective": "alphaflow", "seed": 0}, str(tmp_path / "c"))
    callback.on_trial_start(0, [], c)
    finish(c, 3.0)
    callback.on_experiment_end([])  # the end of the run writes whatever is due
    assert list(pd.read_csv(board)["trial_id"]) == ["c", "b", "a"]
    assert list(pd.read_csv(tmp_path / "leaderboard.csv")["trial_id"]) == ["c", "b", "a"]
