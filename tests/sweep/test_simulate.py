"""sweep.simulate: the surface's closed forms, the step-cost table, and small simulations through the real
driver (Ray Tune, Optuna, ASHA, the tables) on the session's simulated GPUs."""

from __future__ import annotations

import json
import math
import statistics

import optuna
import pandas as pd
import pytest

from search_spaces import SPACES
from sweep.simulate.__main__ import main
from sweep.simulate.model import CostsError, SimModel, relative_costs
from sweep.simulate.surface import ABSENT, BEST, WORST, Dim, Surface, dims_of, rng

DIMS = (Dim("a", 0.0, 1.0), Dim("b", 1e-4, 1e-1, log=True), Dim("c", options=("x", "y", "z")))


def optimum(surface: Surface) -> dict:
    """The point where every key adds 0: the zero option, and each numeric key at its optimum for it."""
    c = rng(surface.seed, "fid", "c", "first").choice(["x", "y", "z"])
    point = {"c": c}
    for d in DIMS[:2]:
        base = rng(surface.seed, "fid", d.key, "opt").uniform(0.15, 0.85)
        u = min(0.95, max(0.05, base + rng(surface.seed, "fid", d.key, "shift", c).uniform(-0.25, 0.25)))
        point[d.key] = (
            d.lo + u * (d.hi - d.lo) if not d.log else math.exp(math.log(d.lo) + u * (math.log(d.hi) - math.log(d.lo)))
        )
    return point


def test_the_surface_spans_best_to_worst_with_its_optimum_at_best():
    s = Surface(DIMS, seed=3)
    assert s.true_fid(optimum(s)) == pytest.approx(BEST, abs=1e-9)
    values = [s.true_fid({"a": a / 10, "b": 10 ** (-4 + 3 * b / 10), "c": c})
              for a in range(11) for b in range(11) for c in "xyz"]  # fmt: skip
    assert BEST <= min(values) and max(values) <= WORST
    assert max(values) - min(values) > 5  # the landscape is not flat
    # a key the config lacks adds ABSENT of its weight
    w = s.weights("fid")
    assert s.true_fid({k: v for k, v in optimum(s).items() if k != "a"}) == pytest.approx(
        BEST + (WORST - BEST) * ABSENT * w["a"]
    )


def test_a_numeric_key_adds_its_squared_distance_from_the_optimum():
    s = Surface(DIMS, seed=1)
    opt, w = optimum(s), s.weights("fid")
    u_opt = (opt["a"] - 0.0) / 1.0
    for u in (0.0, 0.3, 1.0):
        expected = BEST + (WORST - BEST) * w["a"] * ((u - u_opt) / max(u_opt, 1 - u_opt)) ** 2
        assert s.true_fid({**opt, "a": u}) == pytest.approx(expected, rel=1e-12)


def test_learning_curves_end_at_the_final_fid_and_fall_with_training():
    s = Surface(DIMS, seed=2)
    p = {"a": 0.2, "b": 1e-3, "c": "y"}
    assert s.curve(p, 1.0) == pytest.approx(s.true_fid(p), rel=1e-12)
    fracs = [0.1, 0.2, 0.4, 0.8, 1.0]
    values = [s.curve(p, f) for f in fracs]
    assert all(x > y for x, y in zip(values, values[1:]))
    r = s.rate(p)
    assert 0.3 <= r <= 0.8
    assert s.curve(p, 0.2) == pytest.approx(s.true_fid(p) * (1 + 0.5 * (0.2**-r - 1)), rel=1e-12)


def test_noise_has_the_asked_size_and_the_same_trial_measures_the_same():
    s = Surface(DIMS, seed=0, noise=0.7)
    p = {"a": 0.5, "b": 1e-2, "c": "x"}
    finals = [s.measured(p, seed, 1.0) - s.true_fid(p) for seed in range(3000)]
    assert statistics.stdev(finals) == pytest.approx(0.7, rel=0.06)
    assert abs(statistics.mean(finals)) < 0.05
    # an FID on 1/10 of the samples adds sqrt(10 - 1) times the noise, independent of the seed effect
    early = [s.measured(p, seed, 0.5, 10.0) - s.curve(p, 0.5) for seed in range(3000)]
    assert statistics.stdev(early) == pytest.approx(0.7 * math.sqrt(10), rel=0.06)
    assert s.measured(p, 5, 0.5, 10.0) == s.measured(p, 5, 0.5, 10.0)
    assert Surface(DIMS, seed=0, noise=0.0).measured(p, 9, 1.0) == s.true_fid(p)


def test_a_conditional_space_shows_every_branch_key():
    dims, drawn = dims_of(SPACES["alpha_schedules"], probes=200)
    keys = {d.key: d for d in dims}
    assert set(keys["alpha.schedule"].options) >= {"constant", "sigmoid", "linear"}
    assert keys["ratio_fm.value"].options == (0.25, 0.5, 0.75)
    assert keys["alpha.value"].lo == 0.0 and keys["alpha.value"].hi == 1.0
    assert {p["objective"] for p in drawn} == {"alphaflow"}  # the space's fixed keys come with each draw


def test_step_costs_come_from_bench_lines(tmp_path):
    lines = [
        "warning: not JSON",
        json.dumps({"what": "machine", "device": "cpu"}),
        json.dumps({"what": "train_step", "target": "pureflow", "variant": "fast", "ms_per_step": 20.0}),
        json.dumps({"what": "train_step", "target": "pureflow", "variant": "naive", "ms_per_step": 99.0}),
        json.dumps({"what": "train_step", "target": "meanflow", "variant": "fast", "ms_per_step": 40.0}),
        json.dumps({"what": "train_step", "target": "meanflow", "variant": "fast", "ms_per_step": 50.0}),
        # not a measurement: nan, inf, a word (Python's json writes and reads NaN and Infinity)
        json.dumps({"what": "train_step", "target": "meanflow", "variant": "fast", "ms_per_step": float("nan")}),
        json.dumps({"what": "train_step", "target": "lsd", "variant": "fast", "ms_per_step": float("inf")}),
        json.dumps({"what": "train_step", "target": "lsd", "variant": "fast", "ms_per_step": "fast"}),
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert relative_costs(path) == {"meanflow": 2.25, "pureflow": 1.0}
    path.write_text(lines[5])
    with pytest.raises(CostsError, match="no fused train_step record of target 'pureflow'"):
        relative_costs(path)
    with pytest.raises(CostsError, match="cannot read"):
        relative_costs(tmp_path / "missing.jsonl")
    model = SimModel(Surface(DIMS), {"pureflow": 1.0}, {}, {}, 10, 5, 1, 10, 100.0, 10.0, 0.01)
    with pytest.raises(CostsError, match="no measurement for target"):
        model.check_targets({"pureflow", "lsd"})
    # a segment: its share of the flow-matching trial times the target's cost, then an evaluation on 1/10 samples
    assert model.segment_seconds({}, 0, 5) == (50.0, 1.0)
    assert model.segment_seconds({}, 5, 10) == (50.0, 10.0)


def test_the_log_reads_each_trials_last_line_and_skips_a_damaged_one(tmp_path):
    from sweep.simulate.analysis import read_log

    path = tmp_path / "sim_log.jsonl"
    lines = [
        {"trial": "a", "step": 2000, "gpu_s": 10.0, "true_fid": 40.0, "t": 1.0, "fid": 60.0},
        {"trial": "b", "step": 2000, "gpu_s": 12.0, "true_fid": 50.0, "t": 2.0, "fid": 70.0},
        {"trial": "a", "step": 4000, "gpu_s": 20.0, "true_fid": 40.0, "t": 3.0, "fid": 55.0},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"trial": "b", "st')  # cut mid-write
    ends = read_log(path)
    assert list(ends["trial"]) == ["b", "a"] and list(ends["results"]) == [1, 2]  # in the order they ended
    assert list(ends["gpu_s"]) == [12.0, 20.0] and not ends["final"].any()  # neither finished
    assert read_log(tmp_path / "missing.jsonl").empty


def study_of(folder):
    return optuna.load_study(study_name="sim", storage=f"sqlite:///{folder / 'optuna.db'}")


def test_a_small_simulation_runs_the_real_driver(ray_session, tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["search", "--reps", "1", "--trials", "8", "--asha-trials", "1", "--gpus", "2", "--seconds-per-trial", "0.3"]
    argv += ["--out", str(out)]
    # the full space: every target, conditional keys, and a define-by-run Ray must pickle at its checkpoints
    assert main([*argv, "--space", "full", "--strategies", "random,tpe+asha-final-only,tpe+asha"]) == 0
    printed = capsys.readouterr().out
    assert "tpe+asha: reaches random's result in" in printed and "regret" not in printed  # no regret: no landscape
    summary = pd.read_csv(out / "search.csv")
    assert list(summary["strategy"]) == ["random", "tpe+asha-final-only", "tpe+asha"]
    assert summary.loc[0, "budget_share_to_random_best"] <= 1.0  # random reaches its own best within its budget
    assert (out / "search.png").stat().st_size > 0
    for strategy in ("random", "tpe+asha-final-only", "tpe+asha"):
        folder = out / "runs" / f"{strategy}-g2-n8-r0" / "sim"
        table = pd.read_csv(folder / "trials.csv")
        log = [json.loads(line) for line in (folder / "sim_log.jsonl").read_text().splitlines()]
        finals = {r["trial"]: r for r in log if r.get("final")}
        assert len(table) == 8 and set(table["status"]) <= {"completed", "stopped"}
        done = table[table["status"] == "completed"].set_index("trial_id")
        assert set(done["fid_kind"]) == {"simulated"}
        # what the driver's table holds is what the trials reported
        for trial_id, row in done.iterrows():
            assert row["final_fid"] == pytest.approx(finals[trial_id]["fid"], rel=1e-12)
            assert row["gpu_seconds"] == pytest.approx(finals[trial_id]["gpu_s"], rel=1e-12)
        pruned = [t for t in study_of(folder).trials if t.state == optuna.trial.TrialState.PRUNED]
        if strategy == "random":
            assert (table["status"] == "completed").all() and not pruned
        else:
            assert (table["status"] == "stopped").any() and pruned
            # the fix: stopped trials reach Optuna with their intermediate FIDs; without it, with none
            assert all(bool(t.intermediate_values) == (strategy == "tpe+asha") for t in pruned)
    curves = pd.read_csv(out / "curves.csv")
    for _, frame in curves.groupby("strategy"):
        assert frame["gpu_hours"].is_monotonic_increasing


def test_overhead_and_table_growth_are_measured(ray_session, tmp_path, capsys):
    out = tmp_path / "overhead"
    argv = ["overhead", "--trials", "4", "--gpus", "2", "--seconds-per-trial", "0.2", "--out", str(out)]
    assert main(argv) == 0
    row = pd.read_csv(out / "overhead.csv").iloc[0]
    assert (row["trials"], row["gpus"], row["trials_run"]) == (4, 2, 4)
    # every reported result went through the timed handler (the log's lines), plus at most one end-of-trial
    # record per trial (Tune's own, when a function trainable returns)
    assert row["results"] >= 4 and row["results"] <= row["results_handled"] <= row["results"] + row["trials_run"]
    assert row["driver_cpu_ms_per_result"] > 0 and row["driver_cpu_s_per_trial"] > 0
    assert main(["tables", "--rows", "5,20", "--out", str(tmp_path / "tables")]) == 0
    frame = pd.read_csv(tmp_path / "tables" / "tables.csv")
    assert list(frame["rows"]) == [5, 20]
    assert (frame[["trials_csv_ms", "with_boards_ms", "study_ms"]] > 0).all().all()
    assert len(pd.read_csv(tmp_path / "tables" / "runs" / "rows-20" / "sim" / "trials.csv")) == 20


def test_step_costs_of_several_bench_runs_and_swapped_tangents(tmp_path):
    """Each run is relative to its own flow-matching step, a target's cost is the median over runs, and a case run
    with the other tangent than its objective's does not count."""

    def step(target, ms, **extra):
        return json.dumps({"what": "train_step", "target": target, "variant": "fast", "ms_per_step": ms, **extra})

    runs = [
        json.dumps({"what": "provenance", "date": "one"}),
        step("pureflow", 20.0),
        step("meanflow", 40.0),
        json.dumps({"what": "provenance", "date": "two"}),
        step("pureflow", 25.0),
        step("meanflow", 75.0),
        step("meanflow", 30.0, tangent_swapped=True),
        step("tim", 50.0),
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(runs) + "\n")
    assert relative_costs(path) == {"meanflow": 2.5, "pureflow": 1.0, "tim": 2.0}
