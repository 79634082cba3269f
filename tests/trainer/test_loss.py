"""The training step: one function, compiled whole, equal to the eager one."""

import torch

from tests.helpers import loss_spec, randomized_dit
from trainer.loss import make_loss_fn, training_loss


def _inputs(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(2, n, 3, 32, 32, generator=g)
    a, b = torch.rand(2, n, generator=g)
    t, t_next = torch.maximum(a, b), torch.minimum(a, b)
    t_next[:2] = t[:2]  # flow-matching rows in the same batch
    return x0, x1, t, t_next


def _loss_and_grads(net, fn, alpha):
    net.zero_grad(set_to_none=True)
    loss, err = fn(*_inputs(), torch.tensor(alpha), continuous=alpha == 0.0)
    loss.backward()
    return loss.detach(), err, [p.grad.clone() for p in net.parameters() if p.grad is not None]


def test_compiled_step_agrees_with_eager_on_cpu():
    """Tolerance: 1e-4 relative (fp32; the compiled graph reorders reductions)."""
    net = randomized_dit(torch.float32, patch=8).train()
    spec = loss_spec("alphaflow")
    eager, compiled = make_loss_fn(net, spec, compile=False), make_loss_fn(net, spec, compile=True)
    for alpha in (0.0, 0.5):  # the JVP graph and the discrete graph
        l1, e1, g1 = _loss_and_grads(net, eager, alpha)
        l2, e2, g2 = _loss_and_grads(net, compiled, alpha)
        torch.testing.assert_close(l2, l1, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(e2, e1, rtol=1e-4, atol=1e-6)
        assert len(g1) == len(g2) > 0
        for a, b in zip(g1, g2):
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


def test_loss_is_the_weighted_mean_of_row_errors():
    net = randomized_dit(torch.float64, patch=8)
    x0, x1, t, t_next = (x.double() for x in _inputs())
    spec = loss_spec("meanflow", adaptive_p=1.0, adaptive_eps=1e-3)
    loss, err = training_loss(
        net, x0, x1, t, t_next, torch.tensor(0.0, dtype=torch.float64), continuous=True, spec=spec
    )
    expected = (err / (err + 1e-3)).mean()
    torch.testing.assert_close(loss.detach(), expected)
    # rows with t_next == t regress onto v
    tt = t[:, None, None, None]
    u = net((1 - tt) * x0 + tt * x1, t, t_next)
    fm = ((u - (x1 - x0)) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(err[:2], fm[:2].detach())


def test_discrete_rows_are_weighted_by_inverse_alpha():
    net = randomized_dit(torch.float64, patch=8)
    x0, x1, t, t_next = (x.double() for x in _inputs())
    alpha = torch.tensor(0.25, dtype=torch.float64)
    plain = loss_spec("alphaflow", adaptive_p=0.0, discrete_weight="none")
    inv = loss_spec("alphaflow", adaptive_p=0.0, discrete_weight="inv_alpha")
    l_plain, err = training_loss(net, x0, x1, t, t_next, alpha, continuous=False, spec=plain)
    l_inv, _ = training_loss(net, x0, x1, t, t_next, alpha, continuous=False, spec=inv)
    weights = torch.where(t_next < t, 4.0, 1.0).double()
    torch.testing.assert_close(l_inv.detach(), (weights * err).mean())
    assert l_inv > l_plain


def test_summed_row_error_is_the_mean_times_the_pixel_count():
    """loss_reduction='sum' (MeanFlow's codes): with p = 1 it equals 'mean' with eps / D, D = 3072 pixels."""
    net = randomized_dit(torch.float64, patch=8)
    x0, x1, t, t_next = (x.double() for x in _inputs())
    zero = torch.tensor(0.0, dtype=torch.float64)
    summed, mse = training_loss(net, x0, x1, t, t_next, zero, continuous=True, spec=loss_spec(loss_reduction="sum"))
    averaged, mse2 = training_loss(
        net, x0, x1, t, t_next, zero, continuous=True, spec=loss_spec(adaptive_eps=1e-3 / 3072)
    )
    torch.testing.assert_close(mse, mse2)  # the tracked error is per pixel either way
    torch.testing.assert_close(summed.detach(), averaged.detach())
    plain_sum, _ = training_loss(
        net, x0, x1, t, t_next, zero, continuous=True, spec=loss_spec(loss_reduction="sum", adaptive_p=0.0)
    )
    torch.testing.assert_close(plain_sum.detach(), 3072 * mse.mean())
