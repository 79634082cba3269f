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
        "seed": seed,
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
            seed=0,
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
            seed=0,
            finished_at=name,
        )
        table.save()
    merged = merge_leaderboards(tmp_path)
    assert len(merged) == 1 and merged["sweep"].item() == "a"  # the first finish counts


def test_a_sweeps_board_and_the_merged_board_agree_on_a_repeated_config_and_seed(tmp_path):
    table = SweepTable(tmp_path, "a", "baselines")
    for trial_id, fid, finished in (("t1", 4.0, "1"), ("t2", 3.0, "2"), ("t3", 5.0, "3")):
        config = "same" if trial_id != "t3" else "other"  # t2 reruns t1's config on its seed
        table.update(trial_id, status="completed", final_fid=fid, fid_kind="k", config_hash=config, seed=0,
                     finished_at=finished)  # fmt: skip
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


def test_every_column_the_driver_writes_is_a_measurement_or_a_config_key():
    """Columns written by the callback must never reach a config as parameters (confirm and the report rebuild
    configs from rows)."""
    import pandas as pd

    from sweep.columns import param_columns, row_params
    from trainer.config import from_flat

    row = {
        "trial_id": "t", "status": "completed", "restarts": 1, "trial_dir": "/x", "gpus": 0.0, "step": 20,
        "intermediate_fid_10": 4.0, "final_fid_nfe1": 5.0, "fid_kind_nfe1": "k", "seed": 3, "config_hash": "h",
        "error": "", "diverged_step": 1, "baseline": "meanflow", "best_intermediate_fid": 4.0,
        "objective": "meanflow", "ratio_fm.value": 0.75, "steps": 20, "dyadic_levels": 7.0,
    }  # fmt: skip
    assert param_columns(pd.DataFrame(columns=list(row))) == ["dyadic_levels", "objective", "ratio_fm.value"]
    params = row_params(row)
    assert params == {"dyadic_levels": 7, "objective": "meanflow", "ratio_fm.value": 0.75}
    from_flat(params)  # a valid config: 7.0 from the CSV is back to an int
