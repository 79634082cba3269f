"""TVM, TiM and DMF (trainer/objectives/flowmaps.py) against their released losses, and the interval weight and the
imf knob against closed forms; float64 on a randomized tiny DiT."""

import pytest
import torch

from tests.helpers import batch, loss_spec, randomized_dit
from tests.trainer import released
from trainer.config import from_flat
from trainer.loss import training_loss
from trainer.objectives import RowLoss, TimeSpec, sample_times
from trainer.objectives.flowmaps import dmf_row_loss
from trainer.objectives.schedules import SCHEDULES
from trainer.objectives.tangent import Tangent

B4 = (slice(None), None, None, None)
ZERO = torch.tensor(0.0, dtype=torch.float64)


def grads(net, loss):
    return torch.autograd.grad(loss, [p for p in net.parameters() if p.requires_grad])


def assert_same(net, ours, theirs, tol=1e-10):
    """Loss to ``tol``; every gradient to ``tol`` relative to its largest entry (a difference quotient's
    rounding, ~1e-16 / eps, is the only thing that may differ)."""
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol)
    for a, b in zip(grads(net, ours), grads(net, theirs)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * max(1.0, float(b.abs().max())))


def pairs(n=4, seed=1):
    """(x0, x1, x1', t, r, t') in float64: two noises, an interval (t, r) and a flow time t' per sample."""
    g = torch.Generator().manual_seed(seed)
    x0, x1, x1b = torch.randn(3, n, 3, 32, 32, generator=g, dtype=torch.float64)
    a, b, c = torch.rand(3, n, generator=g, dtype=torch.float64) * 0.8 + 0.1
    return x0, x1, x1b, torch.maximum(a, b), torch.minimum(a, b), c


# ------------------------------------------------------------------------------------------------- TVM
def test_tvm_agrees_with_the_released_loss_gradient_through_the_jvp_included():
    """Half the rows flow (at t'), half terminal (at t -> r): twice our mean is the release's mean, value and
    gradient (wrapper.py 112-186: the gradient flows through du/dr)."""
    net, teacher = randomized_dit(), randomized_dit(seed=1)
    x0, x1, _, t, r, tp = pairs()
    theirs = released.tvm_loss(net, teacher, x0, x1, t, r, tp).mean()
    both = lambda a, b: torch.cat([a, b])  # noqa: E731
    ours, _ = training_loss(
        net, both(x0, x0), both(x1, x1), both(tp, t), both(tp, r), ZERO,
        continuous=True, spec=loss_spec("tvm", adaptive_p=0.0), teacher=teacher,
    )  # fmt: skip
    assert_same(net, 2 * ours, theirs)


def test_tvm_time_sampler_matches_the_released_one_in_distribution():
    n = 200_000
    cfg = from_flat({"objective": "tvm"})
    t, r = sample_times(n, 0.0, torch.Generator().manual_seed(0), "cpu", cfg.time_spec())
    t2, r2, _ = released.tvm_sample_ts(n, torch.Generator().manual_seed(1))
    q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
    for ours, theirs in ((t, t2), (r, r2), (t - r, t2 - r2)):
        torch.testing.assert_close(torch.quantile(ours.double(), q), torch.quantile(theirs, q), atol=0.006, rtol=0)
    assert bool((r < t).all()) and bool((t <= 1).all())


# ------------------------------------------------------------------------------------------------- TiM
@pytest.mark.parametrize("tangent", ["fd", "jvp"])
def test_tim_agrees_with_the_released_loss_for_both_tangents(tangent):
    """transition.py 171-213 with its derivative (dde, epsilon 0.005; or jvp): loss, target and gradients."""
    net = randomized_dit()
    x_t, t, r, v = batch(n=6, fm_rows=2)
    r = r.clone()
    r[-1] = 0.0  # a consistency row (r = 0), as consistency_ratio gives the last rows
    x0, x1 = x_t - t[B4] * v, x_t + (1 - t[B4]) * v
    theirs, target = released.tim_loss(net, x0, x1, t, r, 2, derivative="dde" if tangent == "fd" else "jvp")
    spec = loss_spec("tim", adaptive_eps=1e-5, tangent=Tangent(tangent, 0.005))
    ours, _ = training_loss(net, x0, x1, t, r, ZERO, continuous=True, spec=spec)
    assert_same(net, ours, theirs)
    # the two tangents differ (a difference is not a JVP) but by eps^2, not by a wrong sign or factor
    other = released.tim_loss(net, x0, x1, t, r, 2, derivative="jvp" if tangent == "fd" else "dde")[1]
    assert 0 < float((other - target).norm() / (target - v).norm()) < 1e-3


def test_tim_rows_as_released_half_flow_first_tenth_r0_last():
    cfg = from_flat({"objective": "tim", "batch_size": 128})
    t, r = sample_times(128, 0.5, torch.Generator().manual_seed(0), "cpu", cfg.time_spec())
    assert bool((t[:64] == r[:64]).all()) and bool((r[-13:] == 0).all()) and bool((r[64:-13] < t[64:-13]).all())


# ------------------------------------------------------------------------------------------------- DMF
def _with_logvar(net):
    return lambda x, t, r: (net(x, t, r), net.head(t, r).view(-1, 1, 1, 1))


def test_dmf_agrees_with_the_released_loss_learned_weight_included():
    """loss.py 142-181, its (B,) x (B, 1, 1, 1) broadcast kept (dmf_pairs=batch): the mean over every pair of a
    term's rows; value and gradients, the log-variance head's included."""
    net = randomized_dit(target="dmf")
    x0, x1, x1b, t, r, tf = pairs()
    theirs, _ = released.dmf_loss(_with_logvar(net), x0, x1, x1b, tf, t, r)
    both = lambda a, b: torch.cat([a, b])  # noqa: E731
    spec = loss_spec("dmf", adaptive_eps=0.01)
    ours, _ = training_loss(
        net, both(x0, x0), both(x1, x1b), both(tf, t), both(tf, r), ZERO, continuous=True, spec=spec
    )
    head = torch.autograd.grad(ours, list(net.head.parameters()), retain_graph=True)
    assert all(float(g.abs().max()) > 0 for g in head)  # the log-variance learns
    assert_same(net, ours, theirs)


def test_dmf_row_loss_per_row_and_its_weight():
    """row: log(e exp(-lv) + eps) + lv; its gradient in e is 1 / (e + eps exp(lv)), and in lv always > 0."""
    err = torch.tensor([0.5, 0.01, 2.0], dtype=torch.float64, requires_grad=True)
    lv = torch.tensor([0.0, -1.0, 0.7], dtype=torch.float64, requires_grad=True)
    loss = dmf_row_loss(err, lv, torch.tensor([False] * 3), 0.01, "row")
    torch.testing.assert_close(loss, torch.log(err * torch.exp(-lv) + 0.01) + lv)
    d_err, d_lv = torch.autograd.grad(loss.sum(), [err, lv])
    torch.testing.assert_close(d_err, 1 / (err + 0.01 * lv.exp()))
    assert bool((d_lv > 0).all())


# ------------------------------------------------------------------------------- the interval weight
def test_interval_weight_at_its_ends():
    """s = 0 (the run's end) is MeanFlow's loss exactly; s = 1 (its start) weighs a row lambda (1 - (t - r)), 1 on
    flow rows, with lambda = 1 / E[1 - (t - r)] from the trial's sampler (mean weight 1)."""
    net = randomized_dit()
    x_t, t, r, v = batch(n=6, fm_rows=2)
    x0, x1 = x_t - t[B4] * v, x_t + (1 - t[B4]) * v
    cfg = from_flat({"objective": "meanflow_interval"})
    spec, plain = cfg.loss_spec(amp=False), loss_spec("meanflow")
    base, _ = training_loss(net, x0, x1, t, r, ZERO, continuous=True, spec=plain)
    end, _ = training_loss(net, x0, x1, t, r, ZERO, continuous=True, spec=spec, strength=ZERO)
    assert float(end.detach()) == float(base.detach())
    start, _ = training_loss(net, x0, x1, t, r, ZERO, continuous=True, spec=spec, strength=ZERO + 1)
    rows = plain.rows
    u = net(x_t, t, r)
    from tests.helpers import call

    per_row = rows.weighted(u, call("meanflow", net, x_t, t, r, 0 * t, v))
    beta = torch.where(t > r, spec.interval_lambda * (1 - (t - r)), torch.ones_like(t))
    torch.testing.assert_close(start, (per_row * beta).mean(), rtol=1e-10, atol=1e-12)
    tt, rr = sample_times(100_000, 0.0, torch.Generator().manual_seed(3), "cpu", TimeSpec())
    assert float((spec.interval_lambda * (1 - (tt - rr))).mean()) == pytest.approx(1.0, abs=0.01)
    power = SCHEDULES["power"].fn
    assert power(0.0) == 1.0 and power(1.0) == 0.0 and power(0.5, k=2.0) == 0.75


# ---------------------------------------------------------------------------------------------- iMF knob
def test_imf_velocity_rows_interval_weighs_flow_rows_once():
    """On rows r = t the one output meets v twice with 'all' (the double weight) and once with 'interval'."""
    net = randomized_dit()
    x_t, t, r, v = batch(n=4, fm_rows=2)
    from trainer.objectives import fused_target

    rows = RowLoss("sum", 1.0, 0.01)
    out = {
        k: fused_target("imf")(net, x_t, t, r, 0 * t, v, rows=rows, imf_velocity_rows=k)[2] for k in ("all", "interval")
    }
    once = rows.weighted(net(x_t, t, t), v)
    torch.testing.assert_close(out["all"][:2], 2 * once[:2])
    torch.testing.assert_close(out["interval"][:2], once[:2])
    torch.testing.assert_close(out["all"][2:], out["interval"][2:])  # interval rows keep both losses
