"""Every space: its suggestions build valid trainer configs, and its baselines are enqueued exactly."""

import optuna
import pytest

from search_spaces import SPACES
from trainer.config import from_flat
from trainer.objectives import OBJECTIVES, TARGETS, ScheduleSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", list(SPACES))
def test_space_suggests_valid_configs_and_runs_baselines_first(name):
    space = SPACES[name]
    assert space.description and "\n" not in space.description
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for point in space.points:
        study.enqueue_trial(point)
    for _ in range(40):
        trial = study.ask()
        fixed = space.define(trial)
        from_flat({"preset": "smoke", **trial.params, **fixed})  # raises on any invalid combination
        study.tell(trial, 1.0)
    first = [t.params for t in study.trials[: len(space.points)]]
    assert first == space.points


def test_baseline_points_reproduce_the_baseline_configs():
    for name, space in SPACES.items():
        for base, point in zip(space.point_names, space.points):
            study = optuna.create_study()
            study.enqueue_trial(point)
            trial = study.ask()
            fixed = space.define(trial)  # suggest first: trial.params fills as it runs
            cfg = from_flat({"preset": "smoke", **trial.params, **fixed})
            ref = from_flat({"preset": "smoke", "objective": base})
            if cfg.target == "alphaflow" and _same_schedule(cfg.alpha, ref.alpha) and ref.target == "meanflow":
                cfg = from_flat({**cfg.to_flat(), "target": "meanflow"})  # alpha = 0 everywhere: the same target
            if cfg.ratio_fm == ref.ratio_fm == ScheduleSpec("constant", {"value": 1.0}):
                cfg = from_flat({**cfg.to_flat(), "target": ref.target})  # every row is flow matching: any target is v
            for key in ("target", "ratio_fm", "alpha", "adaptive_p", "adaptive_eps", "discrete_weight"):
                assert getattr(cfg, key) == getattr(ref, key) or _same_schedule(getattr(cfg, key), getattr(ref, key)), (
                    name,
                    base,
                    key,
                )


def _same_schedule(a, b):
    from trainer.objectives import make_schedule

    try:
        fa, fb = make_schedule(a), make_schedule(b)
    except (TypeError, AttributeError):
        return False
    return all(abs(fa(p / 50) - fb(p / 50)) < 1e-12 for p in range(51))


def test_every_target_is_reachable_from_the_variant_and_full_spaces():
    for name in ("target_variants", "full"):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        seen = set()
        for _ in range(150):
            trial = study.ask()
            SPACES[name].define(trial)
            seen.add(trial.params["target"])
            study.tell(trial, 1.0)
        assert seen == set(TARGETS), name


def test_baselines_space_holds_the_known_three_and_meanflows_cifar_recipe():
    assert SPACES["baselines"].point_names == ["pureflow", "meanflow", "alphaflow", "meanflow_cifar"]
    assert all(OBJECTIVES[n].reference_fid for n in SPACES["baselines"].point_names[:3])


def test_meanflow_cifar_is_a_baseline_wherever_it_lies():
    """It lies in 'baselines' and 'full' (whose ranges hold its wide sampler); no other space holds its settings."""
    holding = [name for name, space in SPACES.items() if "meanflow_cifar" in space.point_names]
    assert holding == ["baselines", "full"]
    point = SPACES["full"].points[SPACES["full"].point_names.index("meanflow_cifar")]
    assert point["time_mean"] == -2.0 and point["loss_reduction"] == "sum" and point["ratio_fm.value"] == 0.25


@pytest.mark.parametrize("name", list(SPACES))
def test_every_space_survives_the_searchers_checkpoint(name, tmp_path):
    """Ray's OptunaSearch pickles the space's define-by-run function with every experiment checkpoint: the
    searcher of every space saves and restores, and the restored one suggests as the original would."""
    import pickle

    from sweep.search import make_searcher

    settings = {"trials": 4, "seeds": 1, "seed": 0, "metric": "final_fid", "objectives": "fid"}
    searcher = make_searcher(SPACES[name], tmp_path, name, {**settings, "storage": "journal"}, None)
    searcher.suggest("t0")
    searcher.save(str(tmp_path / "searcher.pkl"))
    define = pickle.loads(pickle.dumps(SPACES[name].define))
    fixed = [define(optuna.create_study().ask()) for _ in range(2)]
    assert all(isinstance(f, dict) for f in fixed)


def test_the_new_knobs_are_searched_where_their_records_say():
    """TiM's weighting (names) and ratios, DMF's warm-up fraction (its own 10/11 inside the range), the interval
    weight's shape for every target, and the tangent in ``full`` for targets that take a derivative."""
    from search_spaces import full, target_variants
    from search_spaces.base import Choice, Param, Sched

    tim = {p.key: p.spec for p in target_variants.plan("tim") if isinstance(p, Param)}
    assert tim["tim_weight"] == Choice(("sqrt", "constant", "reciprocal", "square", "soft_min_snr"))
    assert {"tim_time_map", "tim_dir", "ratio_r0", "ratio_fm.value"} <= set(tim)
    dmf = {p.key: p.spec for p in target_variants.plan("dmf") if isinstance(p, Param)}
    assert dmf["ratio_fm.at"].lo <= 10 / 11 <= dmf["ratio_fm.at"].hi
    for target in TARGETS:
        assert any(isinstance(p, Sched) and p.prefix == "interval_weight" for p in target_variants.plan(target))
        tangent = [p for p in full.plan(target) if isinstance(p, Param) and p.key == "tangent"]
        assert bool(tangent) == (TARGETS[target].jvp != "no"), target
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    schedules = set()
    for _ in range(60):
        trial = study.ask()
        fixed = SPACES["target_variants"].define(trial)
        schedules.add(from_flat({"preset": "smoke", **trial.params, **fixed}).interval_weight.name)
        study.tell(trial, 1.0)
    assert schedules == {"constant", "power"}
