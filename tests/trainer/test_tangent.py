"""The finite-difference tangent (``tangent=fd``): it converges to the JVP at the central difference's rate for
every target that takes one (value, per-row loss and gradient), and it frees the online network from math
attention."""

import pytest
import torch

from tests.helpers import batch, randomized_dit, rel
from trainer.config import TrainConfig, from_flat
from trainer.loss import training_loss
from trainer.objectives import TARGETS, RowLoss, fused_target
from trainer.objectives.tangent import JVP, Tangent
from trainer.objectives.targets import knob_middle

JVP_TARGETS = [name for name, rec in TARGETS.items() if rec.jvp != "no"]
B4 = (slice(None), None, None, None)


def _alpha(name: str) -> float:
    """alpha where the target's JVP runs: 0 for AlphaFlow's discrete step, 0.5 where alpha is a weight."""
    rec = TARGETS[name]
    return 0.5 if rec.uses_alpha and not rec.discrete else 0.0


def _outputs(name, net, ddt):
    x_t, t, r, v = batch(n=4, fm_rows=1)
    alpha = _alpha(name)
    knobs = {key: knob_middle(knob) for key, knob in TARGETS[name].knobs.items()}
    out = fused_target(name)(
        net,
        x_t,
        t,
        r,
        alpha * (t - r),
        v,
        continuous=alpha == 0.0,
        teacher=net if TARGETS[name].teacher else None,
        rows=RowLoss("mean", 1.0, 1e-3),
        ddt=ddt,
        **knobs,
    )
    loss = out[2].mean() if len(out) > 2 else (out[0] - out[1]).pow(2).mean()
    grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
    return out[1] - v, loss, torch.cat([g.flatten() for g in grads if g is not None])


@pytest.mark.parametrize("name", JVP_TARGETS)
def test_fd_tangent_converges_to_the_jvp_at_second_order(name):
    """Target, loss and gradient under fd tend to the JVP's; ten times smaller eps, ~100 times smaller error."""
    net = randomized_dit(target=name)
    exact = _outputs(name, net, JVP)
    errors = []
    for eps in (1e-2, 1e-3):
        approx = _outputs(name, net, Tangent("fd", eps))
        errors.append([rel(a, b) for a, b in zip(approx, exact)])
    for (big_sig, big_loss, big_grad), (small_sig, small_loss, small_grad) in zip(errors, errors[1:]):
        assert small_sig < 1e-4, errors
        assert 30 < big_sig / small_sig < 300, errors  # O(eps^2): 100 for a tenfold step
        assert small_grad < 1e-3 and big_grad / max(small_grad, 1e-15) > 30, errors
    assert errors[0][0] > 1e-8, "the network is trivially linear in t: the difference would be exact"


def test_fd_tangent_is_a_central_difference_along_the_path():
    """fd's du/dt is [u(x + e v, t + e, r) - u(x - e v, t - e, r)] / (2 e), written out."""
    net = randomized_dit()
    x_t, t, r, v = batch(n=3)
    eps = 0.005
    u, dudt = Tangent("fd", eps)(net, (x_t, t, r), (v, torch.ones_like(t), torch.zeros_like(r)))
    by_hand = (net(x_t + eps * v, t + eps, r) - net(x_t - eps * v, t - eps, r)) / (2 * eps)
    torch.testing.assert_close(dudt, by_hand, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(u, net(x_t, t, r), rtol=0, atol=0)
    assert not dudt.requires_grad and u.requires_grad  # no graph kept for the two extra forwards


def test_fd_training_step_runs_with_the_fused_attention_kernel():
    """Without a JVP the online network takes the fused kernel, and the step's loss is the math kernel's."""
    x_t, t, r, v = batch(n=4, dtype=torch.float32, fm_rows=1)
    x0, x1 = x_t - t[B4] * v, x_t + (1 - t[B4]) * v
    cfg = TrainConfig(target="meanflow", tangent="fd")
    assert not cfg.takes_jvp and TrainConfig(target="meanflow").takes_jvp
    losses = {}
    for kind in ("fused", "math"):
        net = randomized_dit(torch.float32).set_attention(kind)
        losses[kind], _ = training_loss(
            net, x0, x1, t, r, torch.tensor(0.0), continuous=True, spec=cfg.loss_spec(amp=False)
        )
    torch.testing.assert_close(losses["fused"], losses["math"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"tangent": "finite"}, "unknown tangent 'finite'; choose one of: jvp, fd"),
        ({"tangent": "fd", "tangent_eps": 0.5}, "tangent_eps=0.5 must be in [0.0001, 0.05]"),
        ({"tangent": "fd", "tangent_eps": "small"}, "tangent_eps='small' must be a number"),
        ({"target": "pureflow", "tangent": "fd"}, "tangent=fd has no effect on target 'pureflow'"),
        ({"target": "soflow", "tangent_eps": 0.01}, "has no effect on target 'soflow'"),
    ],
)
def test_bad_tangent_settings_are_refused_in_one_sentence(flat, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        from_flat(flat)


def test_fd_tangent_keeps_fp32_under_bf16_autocast():
    """Under bf16 autocast the two extra forwards run in fp32: the difference stays at fp32's error, where a bf16
    difference over 2 eps would be off by a large share of du/dt itself."""
    net = randomized_dit(torch.float32)
    x_t, t, r, v = batch(n=4, dtype=torch.float32)
    tangents = (v, torch.ones_like(t), torch.zeros_like(r))
    _, exact = torch.func.jvp(net, (x_t, t, r), tangents)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, fd = Tangent("fd", 0.005)(net, (x_t, t, r), tangents)
        plus, minus = net(x_t + 0.005 * v, t + 0.005, r), net(x_t - 0.005 * v, t - 0.005, r)
    assert rel(fd, exact) < 1e-3
    assert rel((plus.float() - minus.float()) / 0.01, exact) > 0.05  # what bf16 forwards would give
