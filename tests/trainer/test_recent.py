"""The objectives published after MeanFlow (trainer/objectives/recent.py) against their released losses, closed
forms and finite differences, in float64 on a randomized tiny DiT."""

import pytest
import torch

from tests.helpers import batch, call, central_dudt, loss_spec, randomized_dit, rel
from tests.trainer import released
from trainer.loss import training_loss
from trainer.objectives import TARGETS, RowLoss, TimeSpec, fused_target, sample_times

B4 = (slice(None), None, None, None)


def _grads(net, loss):
    return torch.autograd.grad(loss, [p for p in net.parameters() if p.requires_grad])


def assert_same_grads(net, ours, theirs, tol=1e-10):
    for a, b in zip(_grads(net, ours), _grads(net, theirs)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def data(n=6, fm_rows=2, seed=1):
    """(x0, x1, t, r) in float64: r = t on the first ``fm_rows`` rows."""
    x_t, t, r, v = batch(n=n, fm_rows=fm_rows, seed=seed)
    x0 = x_t - t[B4] * v
    return x0, x0 + v, t, r


# ------------------------------------------------------------------------------------------- iMF
def test_imf_agrees_with_the_released_loss():
    """Loss, target, weights and gradients equal imf.py's forward (transcribed) with u(x, t, t) as its v-head."""
    net = randomized_dit()
    x0, x1, t, r = data()
    spec = loss_spec("imf", adaptive_p=1.0, adaptive_eps=0.01, loss_reduction="sum")
    ours, _ = training_loss(net, x0, x1, t, r, torch.tensor(0.0, dtype=torch.float64), continuous=True, spec=spec)
    theirs, u_tgt, (w_u, w_v) = released.imf_loss(net, lambda z, t_, r_: net(z, t_, t_), x0, x1, t, r)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    x_t, v = (1 - t[B4]) * x0 + t[B4] * x1, x1 - x0
    torch.testing.assert_close(call("imf", net, x_t, t, r, 0 * t, v), u_tgt, rtol=1e-10, atol=1e-10)
    rows = RowLoss("sum", 1.0, 0.01)
    u, own = net(x_t, t, r), net(x_t, t, t)
    torch.testing.assert_close(rows.weight(rows.error(u, u_tgt)), w_u, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rows.weight(rows.error(own, v)), w_v, rtol=1e-10, atol=1e-10)
    assert_same_grads(net, ours, theirs)


def test_imf_time_sampler_matches_the_released_one_in_distribution():
    """imf.py sample_tr: half the rows r = t (t the larger of two draws), the rest sorted pairs."""
    n = 200_000
    t, r = sample_times(n, 0.5, torch.Generator().manual_seed(0), "cpu", TimeSpec(fm_time="max"))
    t2, r2 = released.imf_sample_tr(n, torch.Generator().manual_seed(1))
    assert bool((t[: n // 2] == r[: n // 2]).all()) and bool((t2[: n // 2] == r2[: n // 2]).all())
    for ours, theirs in (
        (t, t2),
        (r[n // 2 :], r2[n // 2 :]),
        (t[n // 2 :] - r[n // 2 :], t2[n // 2 :] - r2[n // 2 :]),
    ):
        q = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)
        torch.testing.assert_close(
            torch.quantile(ours.double()[:100_000], q), torch.quantile(theirs[:100_000], q), atol=6e-3, rtol=0
        )


# ------------------------------------------------------------------------------------------ SoFlow
@pytest.mark.parametrize("fm_rows", [0, 2])
def test_soflow_agrees_with_the_released_loss(fm_rows):
    """train.py 281 over models.py's two losses: loss, weights, target and gradients, with and without FM rows."""
    net = randomized_dit()
    n = 6
    x0, x1, t, r = data(n=n, fm_rows=fm_rows)
    alpha = torch.tensor(0.3, dtype=torch.float64)
    mid = t - alpha * (t - r)  # the middle time: t + (s - t) ratio
    mid[:fm_rows] = t[:fm_rows]
    spec = loss_spec("soflow", adaptive_p=0.75, adaptive_eps=1e-3, loss_reduction="mean")
    ours, _ = training_loss(net, x0, x1, t, r, alpha, continuous=False, spec=spec)
    theirs, w_v, w_c, f_l = released.soflow_step_loss(
        net, x0, x1, t[:fm_rows], t[fm_rows:], mid[fm_rows:], r[fm_rows:], fm_rows / n, 0.75, 1e-3
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    assert_same_grads(net, ours, theirs)
    x_t, v = (1 - t[B4]) * x0 + t[B4] * x1, x1 - x0
    rows = RowLoss("mean", 0.75, 1e-3)
    if fm_rows:
        torch.testing.assert_close(
            rows.weight(rows.error(net(x_t[:fm_rows], t[:fm_rows], t[:fm_rows]), v[:fm_rows])), w_v
        )
    tgt = call("soflow", net, x_t, t, r, alpha * (t - r), v)
    torch.testing.assert_close(
        tgt[fm_rows:], (x_t[fm_rows:] - f_l) / (t - r)[fm_rows:, None, None, None], rtol=1e-10, atol=1e-10
    )
    torch.testing.assert_close(tgt[:fm_rows], v[:fm_rows])
    # the weight: 1 / (mean dq^2 + eps)^p with dq = (f_t - f_l) / (t - mid) = (t - r)(target - u) / (t - mid)
    u = net(x_t, t, r).detach()
    dq = ((t - r) / (t - mid))[B4] * (tgt - u)
    torch.testing.assert_close(rows.weight(rows.reduce(dq.pow(2)))[fm_rows:], w_c, rtol=1e-10, atol=1e-10)


def test_soflow_target_is_alphaflows_discrete_target_and_its_gradient_a_scaled_squared_error():
    """f_l = x_l - (mid - r) u(x_l, mid, r) makes (x_t - f_l) / (t - r) AlphaFlow's discrete target at dt = t - mid;
    d/du of -mean(u dq) w is w (t - r) / (2 (t - mid)) times d/du of mean((u - target)^2)."""
    net = randomized_dit()
    x_t, t, r, v = batch(fm_rows=1)
    dt = 0.4 * (t - r)
    torch.testing.assert_close(call("soflow", net, x_t, t, r, dt, v), call("alphaflow", net, x_t, t, r, dt, v))
    rows = RowLoss("mean", 0.0, 1e-3)  # p = 0: w = 1
    u = net(x_t, t, r).detach().requires_grad_(True)
    tgt = call("soflow", net, x_t, t, r, dt, v)
    dq = ((t - r) / dt)[B4] * (tgt - u).detach()  # (f_t - f_l) / (t - mid)
    (g_released,) = torch.autograd.grad((-rows.reduce(u * dq))[1:].sum(), u)
    (g_mse,) = torch.autograd.grad(rows.error(u, tgt)[1:].sum(), u)
    torch.testing.assert_close(g_released[1:], ((t - r) / (2 * dt))[1:, None, None, None] * g_mse[1:])


def test_soflow_time_sampler_and_schedule_match_the_released_ones():
    from trainer.config import from_flat
    from trainer.objectives import make_traj_params

    cfg = from_flat({"objective": "soflow"})
    n, steps = 100_000, 800
    traj = make_traj_params(cfg.ratio_fm, cfg.alpha)
    k = 200
    t, r = sample_times(n, 0.0, torch.Generator().manual_seed(0), "cpu", cfg.time_spec())
    alpha = traj(n, k, steps + 1)[1]
    mid = t - torch.clamp(alpha * (t - r), min=1e-4)
    t2, l2, s2 = released.soflow_times(
        n, torch.Generator().manual_seed(1), [-0.9, -4.0, -0.9], [1.6] * 3, k, steps, 1.0, 0.0003125
    )
    q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
    for ours, theirs in ((t, t2), (r, s2), (t - mid, t2 - l2)):
        torch.testing.assert_close(torch.quantile(ours.double(), q), torch.quantile(theirs, q), atol=8e-3, rtol=0.02)
    assert float((t - r).min()) > 0.999e-4 and float((t - mid).min()) > 0.999e-4  # 1e-4, up to fp32 rounding
    assert alpha == pytest.approx(1.0 * (0.0003125 / 1.0) ** (k / steps), rel=1e-12)  # the Exponent ratio at k of K


# -------------------------------------------------------------------------------- vr_meanflow
def test_vr_meanflow_is_meanflow_at_beta_0_and_linear_in_beta():
    net = randomized_dit()
    x_t, t, r, v = batch(fm_rows=1)
    zero = torch.zeros_like(t)
    rec = TARGETS["vr_meanflow"]
    at = {b: rec.fn(net, x_t, t, r, zero, v, "cpu", tangent_beta=b) for b in (0.0, 0.3, 1.0)}
    torch.testing.assert_close(at[0.0], call("meanflow", net, x_t, t, r, zero, v), rtol=0, atol=0)
    torch.testing.assert_close(at[0.3], 0.7 * at[0.0] + 0.3 * at[1.0], rtol=1e-10, atol=1e-10)
    with torch.no_grad():  # beta = 1: the JVP along the model's own velocity, by central differences
        own = net(x_t, t, t)
        expected = v - (t - r)[B4] * central_dudt(net, x_t, t, r, own)
    assert rel(at[1.0] - v, expected - v) < 1e-6
    spec = loss_spec("vr_meanflow", knobs=(("tangent_beta", 0.3),))
    u, tgt = fused_target("vr_meanflow")(net, x_t, t, r, zero, v, continuous=True, rows=spec.rows, tangent_beta=0.3)
    torch.testing.assert_close(tgt, at[0.3], rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------------------- LSD
class GaussianFlowMap(torch.nn.Module):
    """The exact mean velocity for data N(0, s0^2 I): the flow from t to r scales x by sigma(r) / sigma(t),
    sigma(t)^2 = (1 - t)^2 s0^2 + t^2, so u(x, t, r) = x (1 - sigma(r) / sigma(t)) / (t - r); at r = t its limit
    u = x sigma'(t) / sigma(t). A parameter scales it, so gradients exist."""

    def __init__(self, s0=0.5):
        super().__init__()
        self.s0, self.scale = s0, torch.nn.Parameter(torch.ones((), dtype=torch.float64))

    def sigma(self, t):
        return torch.sqrt((1 - t) ** 2 * self.s0**2 + t**2)

    def forward(self, x, t, r):
        sig_t, sig_r = self.sigma(t), self.sigma(r)
        span = t - r
        far = (1 - sig_r / sig_t) / torch.where(span > 0, span, torch.ones_like(span))
        near = (t - (1 - t) * self.s0**2) / sig_t**2  # sigma'(t) / sigma(t)
        return self.scale * x * torch.where(span > 0, far, near)[B4]


def test_lsd_residual_vanishes_on_the_exact_flow_map_and_not_on_a_wrong_one():
    """The Lagrangian identity d/dr X_{t->r}(x) = u(X, r, r) holds for the true flow map: target = u."""
    net = GaussianFlowMap()
    x_t, t, r, v = batch(n=8, fm_rows=2)
    u = net(x_t, t, r)
    got = call("lsd", net, x_t, t, r, 0 * t, v)
    torch.testing.assert_close(got[2:], u[2:], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got[:2], v[:2])
    with torch.no_grad():
        net.scale.fill_(1.1)  # no longer a flow map: the identity fails
    assert rel(call("lsd", net, x_t, t, r, 0 * t, v)[2:], net(x_t, t, r)[2:]) > 1e-3


def test_lsd_derivative_in_r_and_its_gradient():
    """d/dr u by central differences; the gradient through it equals reverse-over-reverse autograd."""
    net = randomized_dit()
    x_t, t, r, v = batch(fm_rows=1)
    with torch.no_grad():
        u = net(x_t, t, r)
        end = net(x_t - (t - r)[B4] * u, r, r)
        dudr = (net(x_t, t, r + 1e-5) - net(x_t, t, r - 1e-5)) / 2e-5
    expected = torch.where((t > r)[B4], end + (t - r)[B4] * dudr, v)
    assert rel(call("lsd", net, x_t, t, r, 0 * t, v), expected) < 1e-8
    rows = RowLoss("sum", 1.0, 1e-3)
    *_, per_row = fused_target("lsd")(net, x_t, t, r, 0 * t, v, continuous=True, rows=rows)
    # the same residual with d/dr u from reverse mode twice (no forward-mode derivative involved)
    eps = torch.zeros((), dtype=torch.float64, requires_grad=True)
    out = net(x_t, t, r + eps)
    w = torch.ones_like(out, requires_grad=True)
    (g,) = torch.autograd.grad(out, eps, w, create_graph=True)
    (dudr_rr,) = torch.autograd.grad(g, w, create_graph=True)
    lhs = out - (t - r)[B4] * dudr_rr
    theirs = rows.weighted(lhs, torch.where((t > r)[B4], end, v))
    torch.testing.assert_close(per_row, theirs, rtol=1e-10, atol=1e-10)
    assert_same_grads(net, per_row.mean(), theirs.mean())


# ---------------------------------------------------------------------------------- Modular MeanFlow
def test_modular_gradient_moves_linearly_from_meanflow_to_the_full_gradient():
    """lambda = 0 is MeanFlow's gradient, lambda = 1 the gradient through du/dt (reverse mode twice, no forward-mode
    derivative), and lambda in between their mix; the loss value is MeanFlow's for every lambda."""
    net = randomized_dit()
    x0, x1, t, r = data()
    spec = loss_spec("modular", adaptive_p=1.0, adaptive_eps=1e-3, loss_reduction="mean")

    def loss_at(lam):
        return training_loss(net, x0, x1, t, r, torch.tensor(lam, dtype=torch.float64), continuous=lam == 0, spec=spec)[
            0
        ]

    mf = training_loss(
        net,
        x0,
        x1,
        t,
        r,
        torch.tensor(0.0, dtype=torch.float64),
        continuous=True,
        spec=loss_spec("meanflow", adaptive_p=1.0, adaptive_eps=1e-3),
    )[0]
    torch.testing.assert_close(loss_at(0.0), mf, rtol=1e-12, atol=0)
    torch.testing.assert_close(loss_at(0.6), mf, rtol=1e-12, atol=0)
    assert_same_grads(net, loss_at(0.0), mf)
    # lambda = 1 by hand: || u + (t - r) du/dt - v ||^2 with du/dt from reverse mode, gradient through both
    x_t, v = (1 - t[B4]) * x0 + t[B4] * x1, x1 - x0
    eps = torch.zeros((), dtype=torch.float64, requires_grad=True)
    out = net(x_t + eps * v, t + eps, r)
    w = torch.ones_like(out, requires_grad=True)
    (g,) = torch.autograd.grad(out, eps, w, create_graph=True)
    (dudt,) = torch.autograd.grad(g, w, create_graph=True)
    res = out + (t - r)[B4] * dudt - v
    e = res.pow(2).flatten(1).mean(1)
    full = (e / (e.detach() + 1e-3)).mean()
    torch.testing.assert_close(loss_at(1.0), full, rtol=1e-10, atol=0)
    assert_same_grads(net, loss_at(1.0), full)
    g0, g1, g6 = _grads(net, loss_at(0.0)), _grads(net, loss_at(1.0)), _grads(net, loss_at(0.6))
    for a, b, c in zip(g0, g1, g6):
        torch.testing.assert_close(c, 0.4 * a + 0.6 * b, rtol=1e-10, atol=1e-10)
    assert max(float((a - b).abs().max()) for a, b in zip(g0, g1)) > 1e-3  # the two ends differ


def test_modular_warmup_schedule_ramps_then_holds():
    from trainer.config import from_flat
    from trainer.objectives import make_traj_params

    cfg = from_flat({"objective": "modular"})
    traj = make_traj_params(cfg.ratio_fm, cfg.alpha)
    alphas = [traj(8, k, 101)[1] for k in (0, 25, 50, 75, 100)]
    assert alphas == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0])


# ------------------------------------------------------------------------------------ MeanFlow (py-meanflow)
def test_meanflow_cifar_agrees_with_the_released_pytorch_loss():
    """meanflow_cifar's loss settings (pixel sum, p 0.75, eps 1e-3) against py-meanflow's forward_with_loss."""
    from trainer.config import from_flat

    net = randomized_dit()
    x0, x1, t, r = data()
    spec = from_flat({"objective": "meanflow_cifar"}).loss_spec(amp=False)
    ours, _ = training_loss(net, x0, x1, t, r, torch.tensor(0.0, dtype=torch.float64), continuous=True, spec=spec)

    def u_func(z, t4, r4):  # the released net takes (t, t - r); ours takes (t, r) and embeds t - r itself
        return net(z, t4.view(-1), r4.view(-1))

    theirs, u_tgt, weight = released.py_meanflow_loss(u_func, x0, x1, t, r, norm_p=0.75, norm_eps=1e-3)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    assert_same_grads(net, ours, theirs)
    x_t, v = (1 - t[B4]) * x0 + t[B4] * x1, x1 - x0
    torch.testing.assert_close(call("meanflow", net, x_t, t, r, 0 * t, v), u_tgt, rtol=1e-10, atol=1e-10)
    rows = spec.rows
    torch.testing.assert_close(rows.weight(rows.error(net(x_t, t, r), u_tgt)), weight.flatten(), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------- AlphaFlow
@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_alphaflow_agrees_with_the_released_loss(alpha):
    """`alphaflow`'s settings (clip 4, eps 1e-3, weight alpha on discrete rows) against AlphaFlowLoss.forward."""
    from trainer.config import from_flat

    net = randomized_dit()
    x0, x1, t, r = data()
    x1 = 3 * x1  # large velocities, so the clip at 4 bites on some pixels
    spec = from_flat({"objective": "alphaflow"}).loss_spec(amp=False)
    a = torch.tensor(alpha, dtype=torch.float64)
    ours, _ = training_loss(net, x0, x1, t, r, a, continuous=alpha == 0.0, spec=spec)

    def their_net(x, sigma_next, sigma):  # AlphaFlow's call order: (x, sigma_next=t_next, sigma=t)
        return net(x, sigma, sigma_next)

    theirs, mean_velocity, weight = released.alphaflow_loss(their_net, x0, x1, t, r, a * (t - r), alpha, 4.0, 1e-3)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    assert_same_grads(net, ours, theirs)
    x_t, v = (1 - t[B4]) * x0 + t[B4] * x1, x1 - x0
    tgt = TARGETS["alphaflow"].fn(net, x_t, t, r, a * (t - r), v, "cpu", clamp=4.0)
    torch.testing.assert_close(tgt, mean_velocity, rtol=1e-10, atol=1e-10)
    if 0 < alpha < 1:
        assert bool((mean_velocity.abs() == 4.0).any())  # the clip was exercised


# ----------------------------------------------------------------------------------------- Shortcut
def test_shortcut_agrees_with_the_released_bootstrap_target():
    """targets_shortcut.py's two clipped half steps from the same state, in its time (s = 1 - t) and velocity
    (towards the data: -u) conventions, equal `shortcut`'s target with clip 4."""
    net = randomized_dit()
    with torch.no_grad():  # velocities of a few units: both clips at 4 bite
        net.final.out.weight.mul_(30.0)
        net.final.out.bias.mul_(30.0)
    g = torch.Generator().manual_seed(2)
    n = 6
    dt_base = torch.tensor([0, 1, 2, 3, 4, 5], dtype=torch.float64)  # steps 1 .. 1/32
    cells = 2**dt_base
    s = torch.floor(torch.rand(n, generator=g, dtype=torch.float64) * cells) / cells  # their t, on the step's grid
    x_t = 3 * torch.randn(n, 3, 32, 32, generator=g, dtype=torch.float64)
    t, r = 1 - s, 1 - s - 1 / cells  # ours: from t to r = t - step

    def call_model_fn(x, s_, dt_base_):  # their model: velocity towards the data over a step of 2^-dt_base
        return -net(x, 1 - s_, 1 - s_ - 1 / 2**dt_base_)

    theirs = -released.shortcut_bootstrap_target(call_model_fn, x_t, s, dt_base)
    ours = TARGETS["shortcut"].fn(net, x_t, t, r, 0 * t, torch.zeros_like(x_t), "cpu", clamp=4.0)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    assert bool((ours.abs() == 4.0).any())  # the target's clip was exercised
