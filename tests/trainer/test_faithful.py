"""The released codes' choices (issue: faithful baselines), each against a closed form or a limit."""

import hashlib
import json
import math

import pytest
import torch

from tests.helpers import batch, loss_spec, randomized_dit
from trainer.config import HASH_NEUTRAL, NOT_HASHED, PROTOCOL_VERSION, from_flat
from trainer.model import SmallDiT, timestep_embedding
from trainer.objectives import TARGETS, TimeSpec, sample_times
from trainer.loss import make_loss_fn, training_loss


# ------------------------------------------------------------ discrete weight
def _grad_norm(net, loss):
    grads = torch.autograd.grad(loss, [p for p in net.parameters() if p.requires_grad])
    return float(torch.sqrt(sum((g**2).sum() for g in grads)))


def _row_grads(net, alpha: float, weight: str):
    """Gradient norms of the discrete rows' loss and of the same rows as MeanFlow rows, and the FM rows' share."""
    x_t, t, t_next, v = batch(n=8, fm_rows=4, seed=3)
    x0, x1 = x_t - t[:, None, None, None] * v, x_t + (1 - t)[:, None, None, None] * v
    a = torch.tensor(alpha, dtype=torch.float64)
    spec = loss_spec("alphaflow", discrete_weight=weight)  # p = 1, eps 1e-3: AlphaFlow's adaptive weight

    def loss_of(rows, alpha_t, continuous):
        return training_loss(net, x0[rows], x1[rows], t[rows], t_next[rows], alpha_t, continuous=continuous, spec=spec)

    disc = _grad_norm(net, loss_of(slice(4, 8), a, False)[0])
    mf = _grad_norm(net, loss_of(slice(4, 8), a * 0, True)[0])
    fm = _grad_norm(net, loss_of(slice(0, 4), a, False)[0])
    return disc / mf, fm / (fm + disc)


def test_discrete_weight_gradient_share_over_alpha():
    """Finding 1: with p = 1, 'alpha' keeps discrete rows near a MeanFlow row's gradient; 'inv_alpha' ~ 1/alpha^2."""
    net = randomized_dit()
    rows = {w: [_row_grads(net, a, w) for a in (0.5, 0.1, 0.01)] for w in ("alpha", "inv_alpha")}
    released = [ratio for ratio, _ in rows["alpha"]]
    paper = [ratio for ratio, _ in rows["inv_alpha"]]
    assert all(0.2 < r < 5.0 for r in released[:2]), released  # ~1x a MeanFlow row for alpha >= 0.1
    for (r_a, _), (r_i, _), alpha in zip(rows["alpha"], rows["inv_alpha"], (0.5, 0.1, 0.01)):
        assert r_i / r_a == pytest.approx(1 / alpha**2, rel=1e-6)  # the weights differ by 1/alpha^2 exactly
    assert paper[1] / paper[0] > 10 and paper[2] / paper[1] > 5  # grows as alpha falls (eps caps it at 0.01)
    fm_share_released, fm_share_paper = rows["alpha"][2][1], rows["inv_alpha"][2][1]
    assert fm_share_paper < 0.01 < 0.1 < fm_share_released  # flow-matching rows all but vanish under 1/alpha


# ------------------------------------------------------------- time embedding
def test_time_scale_reaches_the_embedding_and_the_network():
    t = torch.rand(5, dtype=torch.float64)
    torch.testing.assert_close(timestep_embedding(t, 16, 1000.0), timestep_embedding(1000.0 * t, 16, 1.0))
    half = torch.exp(-math.log(10000.0) * torch.arange(8, dtype=torch.float64) / 8)
    torch.testing.assert_close(
        timestep_embedding(t, 16), torch.cat([torch.cos(t[:, None] * half), torch.sin(t[:, None] * half)], 1)
    )
    from trainer.trial import build_model

    outs = {}
    for scale in (1.0, 1000.0):
        torch.manual_seed(0)
        net, _ = build_model(from_flat({"time_scale": scale}), "cpu")
        assert net.t_embed.scale == net.dt_embed.scale == scale
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
        torch.manual_seed(1)
        outs[scale] = net(torch.randn(2, 3, 32, 32), torch.tensor([0.7, 0.4]), torch.tensor([0.2, 0.1]))
    assert not torch.allclose(outs[1.0], outs[1000.0])
    assert SmallDiT().config.time_scale == 1.0


# ----------------------------------------------------------------- samplers
def _phi(z):
    return 0.5 * (1 + torch.erf(torch.as_tensor(z, dtype=torch.float64) / math.sqrt(2)))


def test_meanflow_cifar_time_sampler_statistics():
    """(t, r) = (max, min) of two sigmoid(N(-2, 2)) draws; 25% flow-matching rows at the larger one (fm_time max)."""
    cfg = from_flat({"objective": "meanflow_cifar"})
    n = 200_000
    t, r = sample_times(n, cfg.ratio_fm.params["value"], torch.Generator().manual_seed(0), "cpu", cfg.time_spec())
    fm = t == r
    assert int(fm.sum()) == n // 4
    for x in (0.02, 0.1, 0.3, 0.6, 0.9):
        f = _phi((math.log(x / (1 - x)) + 2.0) / 2.0)  # the CDF of one draw
        assert float((t[~fm] <= x).double().mean()) == pytest.approx(float(f**2), abs=0.005)  # the larger of two
        assert float((r[~fm] <= x).double().mean()) == pytest.approx(float(1 - (1 - f) ** 2), abs=0.005)
        assert float((t[fm] <= x).double().mean()) == pytest.approx(float(f**2), abs=0.008)


@pytest.mark.parametrize("fm_time", ["single", "max"])
def test_fm_time_single_draws_once_and_max_takes_the_larger_of_two(fm_time):
    n = 100_000
    t, r = sample_times(n, 0.5, torch.Generator().manual_seed(1), "cpu", TimeSpec(fm_time=fm_time))
    fm = t[: n // 2]
    assert bool((r[: n // 2] == fm).all()) and bool((r[n // 2 :] < t[n // 2 :]).all())
    f = float(_phi((0.0 + 0.4) / 1.0))  # P(one draw <= 0.5) for sigmoid(N(-0.4, 1))
    expected = f if fm_time == "single" else f**2
    assert float((fm <= 0.5).double().mean()) == pytest.approx(expected, abs=0.006)


def test_fm_time_max_draws_exactly_what_protocol_1_drew():
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    t, r = sample_times(64, 0.75, g1, "cpu", TimeSpec(fm_time="max"))
    a, b = torch.sigmoid(torch.randn(64, generator=g2) - 0.4), torch.sigmoid(torch.randn(64, generator=g2) - 0.4)
    hi, lo = torch.maximum(a, b), torch.minimum(a, b)
    torch.testing.assert_close(t, hi)
    torch.testing.assert_close(r, torch.cat([hi[:48], lo[48:]]))


def test_dyadic_grid():
    """Shortcut's sampler: step sizes 2^-k split evenly (the rest d = 1), t on that step's grid, r = t - d."""
    levels, n = 7, 7 * 40 + 3
    spec = TimeSpec(sampler="dyadic", dyadic_levels=levels, fm_time="single")
    t, r = sample_times(n + 50, 50 / (n + 50), torch.Generator().manual_seed(0), "cpu", spec)
    fm_t, t, r = t[:50], t[50:], r[50:]
    d = t - r
    k = -torch.log2(d)
    torch.testing.assert_close(k, k.round())  # every step is a power of two
    counts = torch.bincount(k.round().long(), minlength=levels)
    assert counts.tolist() == [40 + 3] + [40] * (levels - 1)
    cells = t / d
    torch.testing.assert_close(cells, cells.round())  # t is on its step's grid
    assert float(r.min()) >= 0.0 and float(t.max()) <= 1.0
    grid = fm_t * 2**levels
    torch.testing.assert_close(grid, grid.round())  # flow-matching rows on the finest grid
    assert float(fm_t.min()) > 0.0
    seen = {int(c) for c in (t / d).round()[k.round() == 3]}
    assert seen <= set(range(1, 9)) and len(seen) >= 5  # uniform over the 8 cells of d = 1/8


# ---------------------------------------------------------------- bf16 path
def _cpu_inputs(n=8):
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, n, 3, 32, 32, generator=g)
    a, b = torch.rand(2, n, generator=g)
    t, t_next = torch.maximum(a, b), torch.minimum(a, b)
    t_next[:2] = t[:2]
    return x0, x1, t, t_next


@pytest.mark.parametrize("name", list(TARGETS))
def test_bf16_autocast_runs_every_target_eager_and_compiled_on_cpu(name):
    """A dtype error in the bf16 path must surface in CI, not on a user's GPU."""
    net = randomized_dit(torch.float32, patch=8, target=name).train()
    teacher = randomized_dit(torch.float32, patch=8, seed=1) if TARGETS[name].teacher else None
    alpha = 0.5 if TARGETS[name].uses_alpha else 0.0
    inputs = (*_cpu_inputs(), torch.tensor(alpha))
    ref, _ = make_loss_fn(net, loss_spec(name, target_clamp=4.0), teacher=teacher)(*inputs, continuous=alpha == 0)
    for compile_ in (False, True):
        fn = make_loss_fn(net, loss_spec(name, target_clamp=4.0, amp=True), compile=compile_, teacher=teacher)
        loss, mse = fn(*inputs, continuous=alpha == 0)
        assert loss.dtype == mse.dtype == torch.float32
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        net.zero_grad(set_to_none=True)
        assert float(loss.detach()) == pytest.approx(
            float(ref.detach()), rel=0.05
        )  # bf16 rounding, not a different loss


def test_bf16_sampler_and_precision_check_on_cpu():
    from trainer.precision import precision_check
    from trainer.sampler import sample_images

    net = randomized_dit(torch.float32, patch=8).set_attention("fused")
    a = sample_images(net, 16, seed=0, steps=3, batch_size=8)
    b = sample_images(net, 16, seed=0, steps=3, batch_size=8, amp=True)
    assert a.dtype == b.dtype == torch.uint8 and a.shape == b.shape
    assert float((a.int() - b.int()).abs().float().mean()) < 8.0
    rec = precision_check("cpu", "tiny", batch=8, images=16)
    for key in ("rel_err_u", "rel_err_jvp_term", "rel_err_target"):
        assert 0.0 < rec[key] < 0.1, rec
    assert rec["images"] == 16 and 0.0 <= rec["uint8_share_differing"] <= 1.0


# ------------------------------------------------------------ config meaning
def test_a_config_that_trains_as_under_protocol_1_keeps_its_hash():
    """New keys at their protocol-1 value leave the hash alone; changed behaviour under old keys changes it.

    The constants are protocol 1's hash formula (commit 7c8e85a) applied to each config without its seed and
    checkpoint_every, which the hash leaves out since seeds became data.
    """
    protocol_1 = {"preset": "smoke", "amp": True, "time_scale": 1000.0, "fm_time": "max", "adam_b2": 0.999}
    legacy = {**protocol_1, "objective": "pureflow", "discrete_weight": "inv_alpha"}
    assert from_flat(legacy).config_hash() == "38ac46611362"
    assert from_flat({"preset": "smoke", "objective": "pureflow"}).config_hash() != "38ac46611362"
    split = {**protocol_1, "target": "splitmeanflow", "alpha.value": 0.5, "adaptive_p": 0.0}
    clamped = {**protocol_1, "target": "meanflow", "target_clamp": 2.0}
    for flat, old in ((split, "3fda554c5eec"), (clamped, "9003b9c3d61d")):
        cfg = from_flat({**flat, "discrete_weight": "inv_alpha"})
        assert cfg.config_hash() != old  # the math behind these keys changed ...
        keys = {k: v for k, v in cfg.to_flat().items() if k not in NOT_HASHED and HASH_NEUTRAL.get(k, object()) != v}
        plain = hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:12]
        assert plain == old  # ... and the keys alone hash as before: the marker is what moves it


def test_results_carry_the_protocol_version():
    from trainer import train

    res = train({"preset": "smoke", "steps": 4, "eval_every": 0, "fid_samples": 16})
    assert res.protocol_version == PROTOCOL_VERSION
