"""The training loss of one batch, as one function that ``torch.compile`` can compile whole.

Every row kind of the protocol lives in one batch: flow-matching rows
(t_next = t), continuous MeanFlow rows (alpha = 0) and discrete AlphaFlow rows
(alpha > 0). The fused target yields the prediction u (with gradient) and the
target from one pass: for continuous rows, one forward-mode JVP gives both u
and du/dt. Nothing here reads a value back to the host.

Precision: under bf16 autocast (``amp``; off by default, as the released
MeanFlow port runs the JVP in fp32) the network's matmuls run in bf16; the
time embeddings' sin/cos arguments, the residual, the adaptive weight and the
loss stay fp32, because bf16's 8-bit mantissa would quantise a time scaled by
1000 to steps of 4 and the loss ratio e / (e + eps) to ~0.4%. ``amp`` here
applies on any device (CPU bf16 autocast is how CI exercises the bf16 path);
the trainer turns it on only on CUDA.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from trainer.objectives import TARGETS, RowLoss, discrete_row_weight, fused_target
from trainer.objectives.tangent import JVP, Tangent


@dataclass(frozen=True, kw_only=True)
class LossSpec:
    """The loss settings of a trial; built from the config by keyword (``TrainConfig.loss_spec``)."""

    target: str
    adaptive_p: float
    adaptive_eps: float
    discrete_weight: str
    target_clamp: float  # > 0: clip the targets a target computes (see its record's ``clamps``); 0: off
    loss_reduction: str  # row error: mean or sum over pixels
    amp: bool = False  # bf16 autocast on whatever device the tensors are on
    knobs: tuple = ()  # (name, value) of the target's own settings (its record's ``knobs``), passed by keyword
    tangent: Tangent = JVP  # how JVP targets take du/dt (trainer/objectives/tangent.py)
    interval_lambda: float = 0.0  # > 0: the interval weight is on, with this normaliser (see ``interval_weight``)

    @property
    def rows(self) -> RowLoss:
        return RowLoss(self.loss_reduction, self.adaptive_p, self.adaptive_eps)


def interval_weight(t, t_next, strength, lam: float):
    """The small-to-large interval weight of arXiv 2511.19065 (Sec. 5): beta = 1 - s + lambda s (1 - (t - r)).

    On rows with t_next < t only, after the adaptive weight; s (a 0-d tensor) moves from 1 to 0 over the run
    (``interval_weight`` schedule, the paper's s = 1 - (i / T)^k), lambda = 1 / E[1 - (t - r)] keeps its mean 1.
    """
    beta = 1.0 - strength + lam * strength * (1.0 - (t - t_next))
    return torch.where(t > t_next, beta, torch.ones_like(beta))


def training_loss(net, x0, x1, t, t_next, alpha, *, continuous: bool, spec: LossSpec, teacher=None, strength=None):
    """Weighted loss of one batch.

    Args:
        net: the online network, net(x, t, t_next) -> mean velocity.
        x0: data (N, C, H, W) in [-1, 1]; x1: noise (N, C, H, W).
        t, t_next: (N,) with t_next <= t.
        alpha: this step's alpha, a 0-d tensor, or (N,) when each row has its own (dt = alpha * (t - t_next)).
        continuous: host bool, alpha == 0 (picks the JVP or the discrete branch).
        teacher: the network that computes the target for teacher targets (an EMA of net), else None.
        strength: the interval weight's s at this step, a 0-d tensor (read only when ``spec.interval_lambda`` > 0).
    Returns:
        (loss, per-row mean squared error (N,)), fp32 or wider; loss carries the gradient.
    """
    tt = t[:, None, None, None]
    x_t = (1 - tt) * x0 + tt * x1  # (N, C, H, W)
    v = x1 - x0  # (N, C, H, W)
    dt = alpha * (t - t_next)  # (N,)
    device_type = x0.device.type
    fused = fused_target(spec.target)
    rows = spec.rows
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=spec.amp):
        out = fused(
            net,
            x_t,
            t,
            t_next,
            dt,
            v,
            continuous=continuous,
            teacher=teacher,
            clamp=spec.target_clamp,
            rows=rows,
            ddt=spec.tangent,
            **dict(spec.knobs),
        )
    u, target = out[0], out[1]
    err = rows.error(u, target)  # (N,) the row error the weight sees
    mse = err / u[0].numel() if spec.loss_reduction == "sum" else err
    if len(out) > 2:  # the target built each row's loss itself (see trainer/objectives/targets.py)
        row = out[2]
    else:
        w = rows.weight(err)
        if TARGETS[spec.target].discrete:
            w = w * discrete_row_weight(dt, alpha, spec.discrete_weight)
        row = w * err
    if spec.interval_lambda > 0:
        row = row * interval_weight(t, t_next, strength, spec.interval_lambda)
    return row.mean(), mse.detach()


def make_loss_fn(net, spec: LossSpec, compile: bool = False, teacher=None):
    """``loss_fn(x0, x1, t, t_next, alpha, continuous)``, compiled whole when asked.

    At most two graphs are compiled per trial (continuous True/False); the
    batch's randomness is drawn outside so eager and compiled runs see the same data.
    """
    fn = functools.partial(training_loss, net, spec=spec, teacher=teacher)
    if not compile:
        return lambda *a, continuous, strength=None: fn(*a, continuous=continuous, strength=strength)
    compiled = torch.compile(fn)
    return lambda *a, continuous, strength=None: compiled(*a, continuous=continuous, strength=strength)
