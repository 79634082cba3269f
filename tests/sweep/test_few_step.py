"""The few-step FIDs in view: ranking by any measured FID, the summary's and leaderboard's columns, cost by
device kind, and the report's labels by objective (planted tables, no Ray)."""

import math

import pandas as pd
import pytest

from sweep.ranking import PROTOCOL_FID_KIND, attach_confirmations, fid_columns, rank
from sweep.report_data import labels
from sweep.tables import SweepTable

KIND = "standin/synthetic/512/euler10"


def _row(i, fid, nfe1, objective="meanflow", baseline=None, gpus=0.0, seconds=360.0, kind=KIND, **extra):
    return {
        "trial_id": f"t{i}",
        "status": "completed",
        "final_fid": fid,
        "final_fid_nfe1": nfe1,
        "final_fid_nfe2": nfe1 / 2,
        "fid_kind": kind,
        "baseline": baseline,
        "config.objective": objective,
        "config_hash": f"h{i}",
        "config.seed": 0,
        "finished_at": f"2026-12-06T00:00:{i:02d}",
        "gpus": gpus,
        "gpu_seconds": seconds,
        **extra,
    }


# the 10-step FID and the 1-step FID rank these rows in opposite orders
ROWS = [
    _row(1, 3.0, 9.0, baseline="meanflow"),
    _row(2, 4.0, 6.0, objective="alphaflow", baseline="alphaflow"),
    _row(3, 5.0, 5.0),
    _row(4, 6.0, 4.0, objective="tvm"),
]


def test_rank_by_a_few_step_fid_orders_by_it_and_takes_meanflows_own_score_at_that_step_count():
    board = rank(pd.DataFrame(ROWS), "final_fid_nfe1")
    assert list(board["trial_id"]) == ["t4", "t3", "t2", "t1"]
    assert list(board["meanflow_fid"]) == [9.0] * 4  # MeanFlow's 1-step FID, not its 10-step one
    assert list(board["delta_vs_meanflow"]) == [-5.0, -4.0, -3.0, 0.0]
    assert list(rank(pd.DataFrame(ROWS))["trial_id"]) == ["t1", "t2", "t3", "t4"]  # the default: final_fid


def test_the_protocols_reference_fid_is_for_the_10_step_fid_only():
    rows = [_row(1, 40.0, 80.0, kind=PROTOCOL_FID_KIND)]
    assert rank(pd.DataFrame(rows))["meanflow_fid"].iloc[0] == pytest.approx(41.81)
    assert math.isnan(rank(pd.DataFrame(rows), "final_fid_nfe1")["meanflow_fid"].iloc[0])  # none published


def test_cost_says_its_device_and_fronts_never_mix_cpu_and_gpu_hours():
    rows = [_row(1, 3.0, 9.0, gpus=0.0, seconds=7200.0), _row(2, 4.0, 9.0, gpus=1.0, seconds=3600.0)]
    board = rank(pd.DataFrame(rows))
    assert list(board["device_kind"]) == ["CPU", "GPU"] and list(board["device_hours"]) == [2.0, 1.0]
    # on one front, the GPU row (cheaper, worse) and the CPU row would both stand; apart, each is its own front
    assert list(board["pareto"]) == [True, True]
    same = rank(pd.DataFrame([{**rows[0]}, {**rows[1], "gpus": 0.0}]))
    assert list(same["pareto"]) == [True, True]
    dominated = rank(pd.DataFrame([_row(1, 3.0, 9.0, seconds=3600.0), _row(2, 4.0, 9.0, seconds=7200.0)]))
    assert list(dominated["pareto"]) == [True, False]  # one kind: worse and dearer is off the front
    assert "gpu_hours" not in board


def test_fid_columns_are_the_measured_ones_in_step_order():
    frame = pd.DataFrame([{**ROWS[0], "final_fid_nfe10": float("nan"), "final_fid_nfe12": 1.0}])
    assert fid_columns(frame) == ["final_fid", "final_fid_nfe1", "final_fid_nfe2", "final_fid_nfe12"]


def test_claims_follow_the_ranked_metric():
    conf = pd.DataFrame(
        [{"config_hash": "h4", "n": 3, "verdict": "worse", "delta_mean": 1.0, "delta_ci_low": 0.5,
          "delta_ci_high": 1.5, "n_nfe1": 3, "verdict_nfe1": "better", "delta_mean_nfe1": -5.0,
          "delta_ci_low_nfe1": -6.0, "delta_ci_high_nfe1": -4.0}]
    )  # fmt: skip
    board = rank(pd.DataFrame(ROWS), "final_fid_nfe1")
    claim = attach_confirmations(board, [conf], "final_fid_nfe1").set_index("trial_id")["claim"]
    assert claim["t4"].startswith("better: -5 FID, 95% CI [-6, -4]")
    assert claim["t3"] == "unconfirmed: one seed, no interval"
    assert (
        attach_confirmations(rank(pd.DataFrame(ROWS)), [conf])
        .set_index("trial_id")["claim"]["t4"]
        .startswith("worse: +1 FID")
    )


def test_labels_name_the_objective_with_the_trial_id_only_where_two_share_one():
    frame = pd.DataFrame(ROWS)
    assert labels(frame) == {"t1": "meanflow (t1)", "t2": "alphaflow", "t3": "meanflow (t3)", "t4": "tvm"}
    assert labels(frame[frame["trial_id"] != "t3"])["t1"] == "meanflow"


def test_the_report_costs_each_config_by_objective_on_its_device():
    from sweep.report import config_costs

    per = config_costs(rank(pd.DataFrame(ROWS)))
    assert dict(zip(per["config_hash"], per["label"]))["h4"] == "tvm"
    assert set(per["device_kind"]) == {"CPU"}


def _planted(results):
    table = SweepTable(results, "few", "baselines")
    for row in ROWS:
        table.update(row["trial_id"], **{k: v for k, v in row.items() if k != "trial_id"})
    table.save()


def test_the_leaderboard_shows_and_ranks_by_the_few_step_fids(tmp_path, capsys):
    from sweep.leaderboard import main as board_main

    _planted(tmp_path)
    assert board_main(["--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head[head.index("final_fid") : head.index("final_fid") + 3] == [
        "final_fid",
        "final_fid_nfe1",
        "final_fid_nfe2",
    ]
    assert "device_hours" in head and "device_kind" in head and "CPU" in out and "gpu_hours" not in out
    assert board_main(["--results-dir", str(tmp_path), "--metric", "final_fid_nfe1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ranked by final_fid_nfe1; delta_vs_meanflow is in final_fid_nfe1"
    assert lines[1].split()[:4] == ["rank", "trial_id", "sweep", "space"]
    assert [line.split()[1] for line in lines[2:]] == ["t4", "t3", "t2", "t1"]
    out = tmp_path / "nfe1.csv"
    assert board_main(["--results-dir", str(tmp_path), "--metric", "final_fid_nfe1", "--space", "baselines",
                       "--csv", str(out)]) == 0  # fmt: skip
    assert list(pd.read_csv(out)["trial_id"]) == ["t4", "t3", "t2", "t1"]


def test_the_sweeps_summary_shows_the_few_step_fids_and_objectives(tmp_path, capsys):
    from sweep.driver import summarize

    _planted(tmp_path)
    assert summarize(tmp_path / "few", "few", 4) == 0
    out = capsys.readouterr().out
    assert "ranked by final_fid (the protocol's 10 steps)" in out
    head = next(line for line in out.splitlines() if line.split()[:2] == ["rank", "trial_id"]).split()
    assert head[:6] == ["rank", "trial_id", "objective", "final_fid", "final_fid_nfe1", "final_fid_nfe2"]
    assert " tvm " in out and " alphaflow " in out
