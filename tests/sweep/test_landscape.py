"""The landscape of real trials and its surrogate: the Sobol design, the surrogate against a planted table, the
landscape command end to end on smoke trials, a search on the shipped table through the real driver, and the
bad inputs of every new flag and file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from search_spaces import SPACES
from sweep.design import DIMS_ATTR, SobolSampler
from sweep.simulate import surrogate
from sweep.simulate.__main__ import main
from sweep.simulate.landscape import FIXED, META, TABLE
from sweep.simulate.surface import Dim, dims_of

SHIPPED = Path(__file__).parents[2] / "sweep" / "simulate" / "landscapes" / "alpha_schedules.csv"
PLANTED_DIMS = (Dim("p.x", 0.0, 1.0), Dim("p.kind", options=("a", "b")))
PLANTED_SD = 0.05


def planted(configs: int = 60, seed: int = 0) -> pd.DataFrame:
    """A table with a known landscape: mean 1 + 4 (x - 0.3)^2 (+0.5 for kind b), three steps whose curve is
    1.6, 1.2 and 1 times the mean, a seed effect N(0, PLANTED_SD) shared by every step of a trial."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(configs):
        x, kind = float(rng.uniform()), "ab"[c % 2]
        mean = 1 + 4 * (x - 0.3) ** 2 + (0.5 if kind == "b" else 0.0)
        for s in range(2):
            luck = rng.normal(0, PLANTED_SD)
            for step, factor in ((20, 1.6), (40, 1.2), (60, 1.0)):
                fid = mean * factor + luck
                rows.append({"config": f"c{c}", "seed": s, "step": step, "fid": fid, "config.p.x": x,
                             "config.p.kind": kind})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_surrogate_recovers_a_planted_best_and_its_noise():
    frame = planted()
    model = surrogate.fit(frame, PLANTED_DIMS)
    grid = [{"p.x": x / 50, "p.kind": k} for x in range(51) for k in "ab"]
    best = min(grid, key=model.true_fid)
    assert best["p.kind"] == "a" and abs(best["p.x"] - 0.3) <= 0.1
    assert model.true_fid({"p.x": 0.3, "p.kind": "a"}) == pytest.approx(1.0, abs=0.1)
    assert model.true_fid({"p.x": 0.95, "p.kind": "b"}) > model.true_fid({"p.x": 0.3, "p.kind": "b"}) + 1
    # the seed noise: the planted SD at every step (pooled over 60 configs of 2 seeds: 60 degrees of freedom),
    # and a seed's luck shared by its steps
    assert model.fractions == pytest.approx((1 / 3, 2 / 3, 1.0))
    for sd in model.sd:
        assert sd == pytest.approx(PLANTED_SD, rel=0.3)
    assert min(model.rho) > 0.9
    # measurements scatter around the curve with that noise; the same trial measures the same
    p = {"p.x": 0.5, "p.kind": "a"}
    draws = [model.of_rep(r).measured(p, 0, 1.0) - model.true_fid(p) for r in range(400)]
    assert np.std(draws) == pytest.approx(model.sd[-1], rel=0.15)
    assert model.measured(p, 3, 0.5) == model.measured(p, 3, 0.5)
    assert model.curve(p, 1 / 3) == pytest.approx(1.6 * (1 + 4 * 0.04), abs=0.15)
    assert model.curve(p, 0.1) == model.curve(p, 1 / 3)  # before the table's first step: its value


def test_held_out_quality_ranks_a_planted_table_and_names_the_noise():
    q = surrogate.quality(planted(), PLANTED_DIMS, folds=5)
    assert q["configs"] == 60 and q["spearman"] > 0.8
    assert q["noise_of_mean"] == pytest.approx(PLANTED_SD / math.sqrt(2), rel=0.3)
    assert q["rmse"] < q["spread"]


def test_the_sobol_design_covers_every_branch_and_continues_where_it_stopped(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SPACES["alpha_schedules"]
    storage = f"sqlite:///{tmp_path / 'd.db'}"

    def asked(study, n):
        out = []
        for _ in range(n):
            trial = study.ask()
            space.define(trial)
            study.tell(trial, 0.0)
            out.append(trial.params)
        return out

    first = asked(optuna.create_study(storage=storage, study_name="d", sampler=SobolSampler(0)), 8)
    # a second process over the same study continues the design: point n for trial n
    later = asked(optuna.load_study(storage=storage, study_name="d", sampler=SobolSampler(0)), 56)
    again = asked(optuna.create_study(sampler=SobolSampler(0)), 64)
    assert first + later == again
    families = {p["alpha.schedule"] for p in again}
    dims, _ = dims_of(space)
    assert families == set(next(d for d in dims if d.key == "alpha.schedule").options)
    for d in dims:
        values = [p[d.key] for p in again if d.key in p]
        if d.options:
            assert set(values) <= set(d.options)
        else:
            assert d.lo <= min(values) and max(values) <= d.hi
    values = sorted(p["alpha.value"] for p in again if "alpha.value" in p)
    assert values[-1] - values[0] > 0.5  # spread over the range, not bunched
    assert len(optuna.load_study(storage=storage, study_name="d").user_attrs[DIMS_ATTR]) == len(dims)
    assert asked(optuna.create_study(sampler=SobolSampler(1)), 4) != again[:4]  # another seed, another design


def test_the_landscape_runs_real_trials_and_continues(ray_session, tmp_path, capsys):
    out = tmp_path / "land"
    argv = ["landscape", "--out", str(out), "--configs", "3", "--seeds", "2", "--steps", "20", "--evals", "2"]
    assert main(argv) == 0
    meta, frame = surrogate.read_table(out / TABLE, "alpha_schedules")
    assert set(META) <= set(meta) and meta["steps"] == "20" and meta["trials"] == "6 completed"
    assert "python -m sweep.simulate landscape" in meta["command"] and meta["date"]
    assert list(frame.columns[: len(FIXED)]) == FIXED
    assert frame["config"].nunique() == 3 and sorted(frame["seed"].unique()) == [0, 1]
    assert sorted(frame["step"].unique()) == [10, 20]
    final = frame[frame["step"] == 20]
    assert final[["fid", "fid_nfe1", "fid_nfe2", "seconds"]].notna().all().all() and len(final) == 6
    assert frame[frame["step"] == 10][["fid_nfe1", "seconds"]].isna().all().all()
    # the space's baselines come first: MeanFlow is a row of the landscape
    assert ((final["config.alpha.schedule"] == "constant") & (final["config.alpha.value"] == 0.0)).sum() == 2
    table = (out / TABLE).read_text()
    capsys.readouterr()
    assert main(argv) == 0  # the same command again: nothing reruns, the table is written again
    assert "continuing" in capsys.readouterr().out
    assert surrogate.read_table(out / TABLE, "alpha_schedules")[1].equals(frame)
    assert table.split("\n", 3)[3] == (out / TABLE).read_text().split("\n", 3)[3]


def test_a_search_on_the_shipped_landscape_runs_the_real_driver(ray_session, tmp_path, capsys):
    out = tmp_path / "search"
    argv = ["search", "--landscape", str(SHIPPED), "--reps", "1", "--trials", "6", "--gpus", "2",
            "--seconds-per-trial", "0.2", "--strategies", "random,top-k,tpe+hyperband", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "held-out over" in printed and "regret at random's budget" in printed
    summary = pd.read_csv(out / "search.csv")
    assert list(summary["strategy"]) == ["random", "top-k", "tpe+hyperband"]
    assert (summary["regret_median"] >= -1e-9).all()  # nothing beats the landscape's best
    _, frame = surrogate.read_table(SHIPPED, "alpha_schedules")
    top = out / "runs" / "top-k-g2-n12-r0"
    first = pd.read_csv(top / "first-rung" / "trials.csv")
    second = pd.read_csv(top / "sim" / "trials.csv")
    assert len(first) == 12 and (first["step"] == first["step"].min()).all()  # every config to the first rung
    kept = first.nsmallest(len(second), "final_fid")
    assert len(second) == 2 and (second["status"] == "completed").all()
    assert sorted(second["config.alpha.schedule"]) == sorted(kept["config.alpha.schedule"])
    hyper = pd.read_csv(out / "runs" / "tpe+hyperband-g2-n12-r0" / "sim" / "trials.csv")
    assert set(hyper["status"]) <= {"completed", "stopped"}


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    "case",
    ["missing", "garbage", "truncated-header", "truncated-rows", "other-space", "words-for-fid", "one-seed"],
)
def test_a_bad_landscape_is_one_sentence_exit_2_and_nothing_written(tmp_path, capsys, case):
    good = SHIPPED.read_text()
    head, body = good.split("config,", 1)
    lines = ("config," + body).splitlines()
    bad = {
        "missing": None,
        "garbage": b"\x00\xff\xfe garbage \x89PNG",
        "truncated-header": good[: len(head) // 2],
        "truncated-rows": head + "\n".join(lines[:5]),
        "other-space": good.replace("# space: alpha_schedules", "# space: target_variants"),
        "words-for-fid": head
        + "\n".join(
            [lines[0], *[",".join(["x" if i == 3 else v for i, v in enumerate(line.split(","))]) for line in lines[1:]]]
        ),  # fmt: skip
        "one-seed": head + "\n".join([lines[0], *[line for line in lines[1:] if line.split(",")[1] == "0"]]),
    }[case]
    path = tmp_path / "land.csv"
    if bad is not None:
        _write(path, bad)
    out = tmp_path / "out"
    assert main(["search", "--landscape", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--landscape" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--configs", "1"], "--configs 1"),
        (["--seeds", "1"], "--seeds 1"),
        (["--evals", "0"], "--evals 0"),
        (["--steps", "6", "--evals", "4"], "--evals 4"),
        (["--out", "FILE"], "is a file"),
        (["--out", "OTHER"], "holds other files"),
    ],
)
def test_bad_landscape_flags_are_one_sentence_exit_2_and_nothing_written(tmp_path, capsys, flags, words):
    _write(tmp_path / "FILE", "x")
    (tmp_path / "OTHER").mkdir()
    _write(tmp_path / "OTHER" / "notes.txt", "mine")
    flags = [str(tmp_path / f) if f in ("FILE", "OTHER") else f for f in flags]
    if "--out" not in flags:
        flags += ["--out", str(tmp_path / "new")]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["landscape", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
