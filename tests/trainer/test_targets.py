"""Targets against closed forms and finite differences, on a randomized (non-linear) tiny DiT in float64."""

import pytest
import torch

from tests.helpers import assert_first_order_in_dt, batch, call, central_dudt, randomized_dit, rel
from trainer.objectives import TARGETS, RowLoss, fused_target


def test_network_is_not_linear_along_the_tangent():
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    d1 = central_dudt(net, x_t, t, t_next, v, 1e-3)
    d2 = central_dudt(net, x_t + 0.3 * v, t + 0.05, t_next, v, 1e-3)
    assert rel(d1, d2) > 1e-2  # the derivative changes along the path: a linear net would pass trivially


def test_meanflow_target_matches_finite_difference():
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    with torch.no_grad():
        expected = v - (t - t_next)[:, None, None, None] * central_dudt(net, x_t, t, t_next, v)
    got = call("meanflow", net, x_t, t, t_next, torch.zeros_like(t), v)
    assert rel(got - v, expected - v) < 1e-3  # compare the JVP part, not the v that both share
    assert not got.requires_grad


def test_alphaflow_with_alpha_one_returns_v():
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    got = call("alphaflow", net, x_t, t, t_next, t - t_next, v)
    torch.testing.assert_close(got, v, rtol=1e-10, atol=1e-10)


def test_alphaflow_tends_to_meanflow_linearly_in_alpha():
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    with torch.no_grad():
        u = net(x_t, t, t_next)
    mf = call("meanflow", net, x_t, t, t_next, torch.zeros_like(t), v) - u
    assert_first_order_in_dt("alphaflow", net, x_t, t, t_next, v, u, mf)


def test_alphaflow_with_zero_dt_is_meanflow():
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    zero = torch.zeros_like(t)
    torch.testing.assert_close(
        call("alphaflow", net, x_t, t, t_next, zero, v), call("meanflow", net, x_t, t, t_next, zero, v)
    )


@pytest.mark.parametrize("name", list(TARGETS))
def test_flow_matching_rows_get_v_for_every_target(name):
    net = randomized_dit(target=name)
    x_t, t, t_next, v = batch(n=4, fm_rows=2)
    dt = 0.5 * (t - t_next)
    got = call(name, net, x_t, t, t_next, dt, v)
    torch.testing.assert_close(got[:2], v[:2], rtol=0, atol=1e-12)
    assert got.shape == x_t.shape


@pytest.mark.parametrize("name", [n for n, rec in TARGETS.items() if rec.fused is not None])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_fused_form_agrees_with_plain_target(name, alpha):
    net = randomized_dit(target=name)
    x_t, t, t_next, v = batch(n=4, fm_rows=1)
    dt = alpha * (t - t_next)
    out = fused_target(name)(net, x_t, t, t_next, dt, v, continuous=alpha == 0.0, rows=RowLoss("sum", 1.0, 1e-3))
    u, tgt = out[:2]
    torch.testing.assert_close(tgt, call(name, net, x_t, t, t_next, dt, v), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(u.detach(), net(x_t, t, t_next).detach(), rtol=1e-9, atol=1e-9)
    assert u.requires_grad and not tgt.requires_grad


def test_func_jvp_matches_autograd_jvp():
    """The seed script's route (torch.autograd.functional.jvp) and ours agree."""
    net = randomized_dit()
    x_t, t, t_next, v = batch()
    tangents = (v, torch.ones_like(t), torch.zeros_like(t_next))
    _, slow = torch.autograd.functional.jvp(net, (x_t, t, t_next), tangents)
    _, fast = torch.func.jvp(net, (x_t, t, t_next), tangents)
    assert rel(fast, slow) < 1e-10
