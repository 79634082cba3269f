import math

import pytest

from trainer.objectives import OBJECTIVES, SCHEDULES, ScheduleSpec, make_schedule, make_traj_params
from trainer.objectives.schedules import progress_of

GRID = [i / 200 for i in range(201)]


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_decaying_schedules_hit_endpoints_and_are_monotone(name):
    f = make_schedule(ScheduleSpec(name, {"start": 0.9, "end": 0.2}))
    assert f(0.0) == pytest.approx(0.9) and f(1.0) == pytest.approx(0.2)
    values = [f(p) for p in GRID]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_constant_and_step():
    assert make_schedule(ScheduleSpec("constant", {"value": 0.3}))(0.7) == 0.3
    f = make_schedule(ScheduleSpec("step", {"before": 1.0, "after": 0.25, "at": 0.4}))
    assert f(0.0) == 1.0 and f(0.399) == 1.0 and f(0.4) == 0.25 and f(1.0) == 0.25


def test_cosine_midpoint_and_linear_midpoint():
    assert make_schedule(ScheduleSpec("cosine", {"start": 1, "end": 0}))(0.5) == pytest.approx(0.5)
    assert make_schedule(ScheduleSpec("linear", {"start": 1, "end": 0}))(0.25) == pytest.approx(0.75)


def test_sigmoid_curriculum_formula_and_clamp():
    gamma, eta = 25.0, 0.005
    f = make_schedule(ScheduleSpec("sigmoid", {"gamma": gamma, "eta": eta}))
    for p in GRID:
        raw = 1 - 1 / (1 + math.exp(-gamma * (p - 0.5)))
        expected = 0.0 if raw < eta else 1.0 if raw > 1 - eta else raw
        assert f(p) == pytest.approx(expected, abs=1e-12)
    assert f(0.5) == pytest.approx(0.5)
    # the clamp really bites: exact 1 early, exact 0 late, nothing in (0, eta) or (1 - eta, 1)
    values = [f(p) for p in GRID]
    assert values[0] == 1.0 and values[-1] == 0.0
    assert not any(0 < v < eta or 1 - eta < v < 1 for v in values)


def test_sigmoid_window():
    f = make_schedule(ScheduleSpec("sigmoid", {"k_init": 0.2, "k_end": 0.6, "gamma": 25}))
    assert f(0.1) == 1.0 and f(0.4) == pytest.approx(0.5) and f(0.7) == 0.0


def test_bad_schedule_inputs_name_what_is_accepted():
    with pytest.raises(ValueError, match="choose one of: constant"):
        make_schedule(ScheduleSpec("geometric", {}))
    with pytest.raises(ValueError, match="accepts: start, end"):
        make_schedule(ScheduleSpec("linear", {"begin": 1}))
    with pytest.raises(ValueError, match=r"eta=0.7 is outside \(0, 0.5\)"):
        make_schedule(ScheduleSpec("sigmoid", {"eta": 0.7}))
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        make_traj_params(ScheduleSpec("linear", {"start": 1.2, "end": 0}), ScheduleSpec("constant", {}))
    with pytest.raises(ValueError, match=r"needs start > 0 and final > 0, got start=1.0, final=0"):
        make_traj_params(ScheduleSpec("constant", {}), ScheduleSpec("exponential", {"start": 1.0, "final": 0}))
    with pytest.raises(ValueError, match=r"warmup until=0 must be > 0"):
        make_traj_params(ScheduleSpec("constant", {}), ScheduleSpec("warmup", {"until": 0}))


def test_warmup_and_exponential_schedules():
    ramp = make_schedule(ScheduleSpec("warmup", {"start": 0.0, "end": 1.0, "until": 0.25}))
    assert [ramp(p) for p in (0.0, 0.125, 0.25, 0.9)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    geo = make_schedule(ScheduleSpec("exponential", {"start": 1.0, "final": 1e-3}))
    assert [geo(p) for p in (0.0, 1 / 3, 1.0)] == pytest.approx([1.0, 0.1, 1e-3])


def test_traj_params_signature_and_progress():
    fn = make_traj_params(ScheduleSpec("linear", {"start": 1.0, "end": 0.5}), ScheduleSpec("constant", {"value": 0.0}))
    assert fn(128, 0, 101, "cpu") == (1.0, 0.0)
    assert fn(128, 100, 101, "cpu") == (0.5, 0.0)
    assert fn(batch_size=8, cur_step=50, max_steps=101, device=None)[0] == pytest.approx(0.75)
    assert progress_of(0, 1) == 0.0 and progress_of(5, 1) == 1.0


def test_baselines():
    mf = make_traj_params(OBJECTIVES["meanflow"].ratio_fm, OBJECTIVES["meanflow"].alpha)
    pf = make_traj_params(OBJECTIVES["pureflow"].ratio_fm, OBJECTIVES["pureflow"].alpha)
    af = make_traj_params(OBJECTIVES["alphaflow"].ratio_fm, OBJECTIVES["alphaflow"].alpha)
    assert mf(128, 500, 10_000, "cpu") == (0.75, 0.0)
    assert pf(128, 500, 10_000, "cpu")[0] == 1.0
    # AlphaFlow's released sigmoid experiment: ratio_fm 0.5, alpha 1 -> 0
    assert af(128, 0, 10_000, "cpu") == (0.5, 1.0) and af(128, 9_999, 10_000, "cpu") == (0.5, 0.0)
    from trainer.objectives.named import KNOWN

    assert [OBJECTIVES[k].reference_fid for k in KNOWN] == [86.21, 41.81, 48.62]
    assert KNOWN == ["pureflow", "meanflow", "alphaflow"]
    assert set(SCHEDULES) >= {"constant", "linear", "cosine", "step", "sigmoid"}
