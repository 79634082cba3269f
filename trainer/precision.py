"""bf16 against fp32 where it matters: the MeanFlow target's two parts, every target, and the sampler's images.

``python -m trainer.bench --precision-check --device cuda --size seed`` prints one
JSON line: the relative error of u and of the JVP term (t - r) du/dt under bf16
autocast against fp32, of that term by the finite-difference tangent (``tangent=fd``,
its default step) in fp32 and in bf16 against the fp32 JVP, of every registered target's departure from v (its
signal: the part that is not the conditional velocity; alpha 0.5 for targets
that read it, knobs mid-range), and how 1,000 sampled uint8 images differ. The released
MeanFlow port runs both in fp32; ``amp`` stays off by default until this check,
on the protocol's network, shows bf16 is close enough.

Weights: a trial checkpoint (``--checkpoint``, its EMA network) or, without one,
the protocol's network with every weight perturbed (adaLN-Zero would otherwise
make it output 0): labelled in the output.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from trainer.model import MODEL_SIZES, SmallDiT
from trainer.objectives import TARGETS, RowLoss, TimeSpec, fused_target, sample_times
from trainer.objectives.tangent import FD_EPS, Tangent
from trainer.objectives.targets import attach_head, knob_middle, u_and_dudt
from trainer.sampler import sample_images


def check_net(size: str, device, checkpoint: str | None = None, time_scale: float = 1.0) -> tuple[SmallDiT, str]:
    torch.manual_seed(0)
    net = SmallDiT(dataclasses.replace(MODEL_SIZES[size], time_scale=time_scale)).to(device)
    if checkpoint:
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        net.load_state_dict(state["ema"])
        return net.eval(), f"checkpoint {checkpoint}"
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return net.eval(), "random weights (every parameter perturbed by N(0, 0.02^2))"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30))


def target_errors(net, x_t, t, r, v) -> dict:
    """Per target: |bf16 - fp32| / |fp32| of (target - v), computed by its fused form as training does."""
    out = {}
    for name, rec in TARGETS.items():
        dt = 0.5 * (t - r) if rec.uses_alpha else torch.zeros_like(t)
        knobs = {key: knob_middle(knob) for key, knob in rec.knobs.items()}
        if not hasattr(net, "head"):
            attach_head(net, name)
        signal = {}
        for amp in (False, True):
            net.set_attention("math")
            with torch.no_grad(), torch.autocast(x_t.device.type, dtype=torch.bfloat16, enabled=amp):
                out_ = fused_target(name)(
                    net,
                    x_t,
                    t,
                    r,
                    dt,
                    v,
                    continuous=not rec.uses_alpha,
                    teacher=net,
                    rows=RowLoss("mean", 1.0, 1e-3),
                    **knobs,
                )
            signal[amp] = out_[1].float() - v
        out[name] = round(_rel(signal[True], signal[False]), 6) if float(signal[False].norm()) > 0 else 0.0
    return out


def precision_check(device, size: str, batch: int, images: int, checkpoint: str | None = None) -> dict:
    """bf16 autocast vs fp32 for u, (t - r) du/dt and ``images`` uint8 samples of the 10-step sampler."""
    device = torch.device(device)
    net, weights = check_net(size, device, checkpoint)
    g = torch.Generator(device=device).manual_seed(0)
    x0 = torch.rand(batch, 3, 32, 32, generator=g, device=device) * 2 - 1
    x1 = torch.randn(batch, 3, 32, 32, generator=g, device=device)
    t, r = sample_times(batch, 0.0, g, device, TimeSpec())
    tt = t[:, None, None, None]
    x_t, v = (1 - tt) * x0 + tt * x1, x1 - x0
    out = {"what": "precision_check", "size": size, "device": str(device), "weights": weights, "batch": batch}
    results = {}
    for name, amp in (("fp32", False), ("bf16", True)):
        net.set_attention("math")
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            u, dudt = u_and_dudt(net, x_t, t, r, v)
        term = (t - r)[:, None, None, None] * dudt.float()
        start = time.perf_counter()
        net.set_attention("fused")
        imgs = sample_images(net, images, seed=0, steps=10, batch_size=min(images, 500), amp=amp)
        results[name] = (u.float(), term, imgs, time.perf_counter() - start)
    (u32, term32, img32, s32), (u16, term16, img16, s16) = results["fp32"], results["bf16"]
    fd = {}
    for name, amp in (("fp32", False), ("bf16", True)):  # the central difference (tangent=fd) against fp32's JVP
        net.set_attention("fused")
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            _, dudt = u_and_dudt(net, x_t, t, r, v, Tangent("fd", FD_EPS))
        fd[name] = round(_rel((t - r)[:, None, None, None] * dudt.float(), term32), 6)
    diff = (img16.int() - img32.int()).abs()
    out.update(
        rel_err_u=round(_rel(u16, u32), 6),
        rel_err_jvp_term=round(_rel(term16, term32), 6),
        rel_err_target=round(_rel(v - term16, v - term32), 6),
        rel_err_target_signal=target_errors(net, x_t, t, r, v),
        rel_err_fd_jvp_term_fp32=fd["fp32"],
        rel_err_fd_jvp_term_bf16=fd["bf16"],
        images=images,
        uint8_mean_abs_diff=round(float(diff.float().mean()), 4),
        uint8_max_abs_diff=int(diff.max()),
        uint8_share_differing=round(float((diff > 0).float().mean()), 6),
        sampling_s_fp32=round(s32, 2),
        sampling_s_bf16=round(s16, 2),
    )
    return out
