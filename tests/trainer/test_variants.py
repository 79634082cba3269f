"""Each target variant against its identity or limit, on a randomized tiny DiT in float64."""

import copy

import pytest
import torch

from tests.helpers import (
    Constant,
    ExactMeanVelocity,
    assert_first_order_in_dt,
    batch,
    call,
    central_dudt,
    loss_spec,
    randomized_dit,
    rel,
)
from trainer import train
from trainer.objectives import TARGETS, TimeSpec, fused_target, sample_times
from trainer.loss import training_loss


def test_splitmeanflow_tends_to_meanflow_along_the_models_velocity_linearly():
    """lambda -> 0: target = u + lambda [u(x_t, t, t) - (t - r) du/dt along (u(x_t, t, t), 1, 0) - u] + O(lambda^2)."""
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    with torch.no_grad():
        u, own = net(x_t, t, t_next), net(x_t, t, t)
        limit = own - (t - t_next)[:, None, None, None] * central_dudt(net, x_t, t, t_next, own) - u
    assert_first_order_in_dt("splitmeanflow", net, x_t, t, t_next, v, u, limit)
    # lambda = 0: the split is the interval itself, the target is u (no signal)
    torch.testing.assert_close(call("splitmeanflow", net, x_t, t, t_next, torch.zeros_like(t), v), u)


def test_split_and_shortcut_are_exact_on_a_flow_map():
    """The true mean velocity of a point mass satisfies both consistency identities: target = u."""
    a = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    net = ExactMeanVelocity(a)
    x_t, t, t_next, _ = batch(n=8)
    v = torch.randn_like(x_t)  # the split reaches s by the model's own jump: v must not matter
    u = net(x_t, t, t_next).detach()
    lam = torch.rand(8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)  # one split per row
    got = call("splitmeanflow", net, x_t, t, t_next, lam * (t - t_next), v)
    torch.testing.assert_close(got, u, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(call("shortcut", net, x_t, t, t_next, t * 0, v), u, rtol=1e-10, atol=1e-10)
    c = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(call("shortcut", Constant(c), x_t, t, t_next, t * 0, v), c.expand_as(x_t))


def test_shortcut_clips_the_half_jump_state_and_the_target():
    c = torch.full((1, 3, 32, 32), 3.0, dtype=torch.float64)
    x_t, t, t_next, v = batch()
    got = TARGETS["shortcut"].fn(Constant(c), x_t, t, t_next, t * 0, v, "cpu", clamp=2.0)
    torch.testing.assert_close(got, torch.full_like(x_t, 2.0))  # (3 + 3) / 2 clipped to 2

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, t_next):
            seen.append(x.clone())
            return torch.full_like(x, 100.0)

    TARGETS["shortcut"].fn(Spy(), x_t, t, t_next, t * 0, v, "cpu", clamp=4.0)
    unclipped = x_t - 0.5 * (t - t_next)[:, None, None, None] * 100.0
    assert float(unclipped.abs().max()) > 4.0 >= float(seen[1].abs().max())  # the half jump's state is clipped


def test_shortcut_and_ema_teacher_keep_an_ema_teacher_that_computes_their_targets():
    from trainer.config import from_flat
    from trainer.trial import Trial

    for objective, decay in (("shortcut", 0.999), ("ema_teacher", 0.99)):
        trial = Trial(from_flat({"preset": "smoke", "objective": objective, "steps": 2, "eval_every": 0}))
        assert trial.teacher is not None and trial.cfg.teacher_decay == decay
        before = [p.clone() for p in trial.teacher.parameters()]
        trial.train_step(0)
        for old, new, online in zip(before, trial.teacher.parameters(), trial.net.parameters()):
            torch.testing.assert_close(new, decay * old + (1 - decay) * online.detach())
    # the generic fused form computes the target with the teacher it is handed
    net, teacher = randomized_dit(), randomized_dit(seed=3)
    x_t, t, t_next, v = batch(fm_rows=1)
    _, tgt = fused_target("shortcut")(net, x_t, t, t_next, t * 0, v, continuous=True, teacher=teacher, clamp=4.0)
    expected = TARGETS["shortcut"].fn(teacher, x_t, t, t_next, t * 0, v, "cpu", clamp=4.0)
    torch.testing.assert_close(tgt, expected)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_ema_teacher_equals_online_target_when_the_teacher_has_the_weights(alpha):
    net = randomized_dit()
    x_t, t, t_next, v = batch(fm_rows=1)
    dt = alpha * (t - t_next)
    _, same = fused_target("ema_teacher")(net, x_t, t, t_next, dt, v, continuous=alpha == 0, teacher=copy.deepcopy(net))
    _, online = fused_target("alphaflow")(net, x_t, t, t_next, dt, v, continuous=alpha == 0)
    torch.testing.assert_close(same, online, rtol=1e-9, atol=1e-9)
    other = randomized_dit(seed=1)
    _, moved = fused_target("ema_teacher")(net, x_t, t, t_next, dt, v, continuous=alpha == 0, teacher=other)
    assert rel(moved[1:], online[1:]) > 1e-3
    torch.testing.assert_close(moved[:1], v[:1])  # flow-matching rows stay v


def test_target_clamp_clips_computed_targets_only():
    """AlphaFlow's loss clips its discrete targets; flow-matching rows (v) and JVP targets are left alone."""
    net = randomized_dit()
    x_t, t, t_next, v = batch(fm_rows=1)
    x0, x1 = x_t - t[:, None, None, None] * v, x_t + (1 - t)[:, None, None, None] * v
    half = torch.tensor(0.5, dtype=torch.float64)

    def target_of(name, alpha, clamp):
        spec = loss_spec(name, target_clamp=clamp, adaptive_p=0.0, discrete_weight="none")
        _, mse = training_loss(net, x0, x1, t, t_next, alpha, continuous=float(alpha) == 0.0, spec=spec)
        return mse

    u = net(x_t, t, t_next).detach()
    disc = call("alphaflow", net, x_t, t, t_next, 0.5 * (t - t_next), v)
    expected = (u - torch.where((t > t_next)[:, None, None, None], disc.clamp(-0.5, 0.5), v)).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(target_of("alphaflow", half, 0.5), expected)
    zero = torch.tensor(0.0, dtype=torch.float64)
    torch.testing.assert_close(target_of("meanflow", zero, 0.5), target_of("meanflow", zero, 0.0))  # JVP: no clip
    torch.testing.assert_close(target_of("pureflow", zero, 0.5), target_of("pureflow", zero, 0.0))  # v: no clip


def test_time_sampler_shapes_t_and_t_next_separately_and_scales_intervals():
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    t, r = sample_times(50_000, 0.0, g(), "cpu", TimeSpec())
    t2, r2 = sample_times(50_000, 0.0, g(), "cpu", TimeSpec(mean_r=-3.0, std_r=0.5))
    assert float((t2 - r2).mean()) > float((t - r).mean()) + 0.1  # the second draw sits low: longer intervals
    t3, r3 = sample_times(50_000, 0.0, g(), "cpu", TimeSpec(), interval_scale=0.25)
    torch.testing.assert_close(t3, t)
    torch.testing.assert_close(t3 - r3, 0.25 * (t - r))
    t4, r4 = sample_times(64, 0.0, g(), "cpu", TimeSpec(sampler="uniform"))
    assert float(r4.min()) < 0.2 and float(t4.max()) > 0.8 and bool((r4 <= t4).all())


@pytest.mark.parametrize(
    "flat",
    [
        {"objective": "splitmeanflow"},
        {"objective": "shortcut"},
        {"objective": "imf"},
        {"objective": "soflow", "ratio_fm.value": 0.25},  # rows with t_next = t to track (ImageNet's recipe has 75%)
        {"objective": "lsd"},
        {"objective": "modular"},
        {"target": "vr_meanflow", "tangent_beta": 0.5},
        {"objective": "ema_teacher", "alpha.k_end": 0.5, "teacher_decay": 0.9},  # 0.99 lags too far in 200 steps
        {"objective": "meanflow_cifar"},
        {"target": "meanflow", "interval_start": 0.2, "time_mean_r": -1.5, "time_scale": 1000.0},
        {"target": "meanflow", "ratio_fm.schedule": "cosine", "ratio_fm.start": 1.0, "ratio_fm.end": 0.5},
    ],
)
def test_variant_trains_in_a_200_step_smoke_trial(flat):
    res = train({"preset": "smoke", "steps": 200, "eval_every": 0, "fid_samples": 64, **flat})
    curve = [fm for _, _, _, fm in res.loss_curve]
    assert all(map(lambda x: x == x and abs(x) < 1e6, [row[1] for row in res.loss_curve]))  # finite loss
    first, last = sum(curve[:10]) / 10, sum(curve[-10:]) / 10
    assert last < 0.7 * first, (first, last)


def test_ema_teacher_with_zero_decay_trains_exactly_like_alphaflow():
    common = {"preset": "smoke", "steps": 60, "eval_every": 0, "fid_samples": 64, "alpha.k_end": 0.5}
    a = train({**common, "objective": "ema_teacher", "teacher_decay": 0.0})
    b = train({**common, "objective": "alphaflow"})
    # the same math; u comes from a plain forward here and from the JVP's primal in alphaflow: fp32 rounding only
    for row_a, row_b in zip(a.loss_curve, b.loss_curve):
        assert row_a == pytest.approx(row_b, rel=1e-4)
