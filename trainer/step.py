"""The training loss of one batch, as one function that ``torch.compile`` can compile whole.

Every row kind of the protocol lives in one batch: flow-matching rows
(t_next = t), continuous MeanFlow rows (alpha = 0) and discrete AlphaFlow rows
(alpha > 0). The fused target yields the prediction u (with gradient) and the
target from one pass: for continuous rows, one forward-mode JVP gives both u
and du/dt. Nothing here reads a value back to the host.

Precision: under bf16 autocast (GPU) the network's matmuls run in bf16; the
time embeddings' sin/cos arguments (t * 1000), the residual, the adaptive
weight and the loss stay fp32, because bf16's 8-bit mantissa would quantise
t * 1000 to steps of 4 and the loss ratio e / (e + eps) to ~0.4%.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from trainer.objectives import adaptive_weight, discrete_row_weight, fused_target


@dataclass(frozen=True)
class LossSpec:
    target: str = "meanflow"
    adaptive_p: float = 1.0
    adaptive_eps: float = 1e-3
    discrete_weight: str = "inv_alpha"
    target_clamp: float = 0.0  # > 0: clamp every target value to [-c, c] (AlphaFlow uses 4); 0: off
    amp: bool = False  # bf16 autocast (only meaningful on CUDA)


def training_loss(net, x0, x1, t, t_next, alpha, *, continuous: bool, spec: LossSpec, teacher=None):
    """Weighted loss of one batch.

    Args:
        net: the online network, net(x, t, t_next) -> mean velocity.
        x0: data (N, C, H, W) in [-1, 1]; x1: noise (N, C, H, W).
        t, t_next: (N,) with t_next <= t.
        alpha: 0-d tensor, this step's alpha (dt = alpha * (t - t_next)).
        continuous: host bool, alpha == 0 (picks the JVP or the discrete branch).
        teacher: the network that computes the target for teacher targets (an EMA of net), else None.
    Returns:
        (loss, per-row squared error (N,)), fp32 or wider; loss carries the gradient.
    """
    tt = t[:, None, None, None]
    x_t = (1 - tt) * x0 + tt * x1  # (N, C, H, W)
    v = x1 - x0  # (N, C, H, W)
    dt = alpha * (t - t_next)  # (N,)
    device_type = x0.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=spec.amp and device_type == "cuda"):
        u, target = fused_target(spec.target)(net, x_t, t, t_next, dt, v, continuous, teacher)
    if spec.target_clamp > 0:
        target = target.clamp(-spec.target_clamp, spec.target_clamp)
    acc = torch.promote_types(u.dtype, torch.float32)  # fp32 at least (bf16 under autocast), fp64 stays fp64
    err = (u.to(acc) - target.to(acc)).pow(2).flatten(1).mean(1)  # (N,)
    w = adaptive_weight(err, spec.adaptive_p, spec.adaptive_eps) * discrete_row_weight(dt, alpha, spec.discrete_weight)
    return (w * err).mean(), err.detach()


def make_loss_fn(net, spec: LossSpec, compile: bool = False, teacher=None):
    """``loss_fn(x0, x1, t, t_next, alpha, continuous)``, compiled whole when asked.

    At most two graphs are compiled per trial (continuous True/False); the
    batch's randomness is drawn outside so eager and compiled runs see the same data.
    """
    fn = functools.partial(training_loss, net, spec=spec, teacher=teacher)
    if not compile:
        return lambda *a, continuous: fn(*a, continuous=continuous)
    compiled = torch.compile(fn)
    return lambda *a, continuous: compiled(*a, continuous=continuous)
