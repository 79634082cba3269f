"""Target variants beyond the reference table, each from its paper's identity or released code.

All follow the convention of ``trainer.objectives`` and the protocol signature
``target(net, x_t, t, t_next, dt, velocity, device)``; rows with t_next == t get
v. r stands for t_next below.

Self-consistency targets (``splitmeanflow``, ``shortcut``) start with a row
error near 0 (the untrained net agrees with itself), so MeanFlow's adaptive
weight 1 / (e + eps) gives those rows weight ~1/eps and they swamp the
flow-matching rows: their objectives use plain MSE (adaptive_p = 0, as in
their papers), and their targets are computed in fp32 (record ``fp32``).
"""

from __future__ import annotations

import torch

from trainer.objectives.tangent import JVP
from trainer.objectives.targets import (
    _alphaflow_fused,
    _bcast,
    alphaflow_target,
    clip,
    flow_matching_rows,
    safe_span,
    target,
)


@target(
    "splitmeanflow",
    uses_alpha=True,
    fp32=True,
    clamps=True,
    source="SplitMeanFlow (Guo et al. 2025), Sec. 3 and Algorithm 1 (no code released)",
)
@torch.no_grad()
def splitmeanflow_target(net, x_t, t, t_next, dt, velocity, device, clamp: float = 0.0):
    """SplitMeanFlow: interval splitting consistency at s = t - dt, reached by the model's own jump. No JVP.

    For r <= s <= t, additivity of displacements gives
        (t - r) u(x_t, t, r) = (s - r) u(x_s, s, r) + (t - s) u(x_t, t, s),
    with x_s = x_t - (t - s) u(x_t, t, s) the model's own jump to s. The split
    fraction lambda = dt / (t - r) is per row: the paper draws lambda ~ U(0, 1)
    for every row (``alpha_rows = uniform`` with alpha 1). So
        target = [(s - r) u(x_s, s, r) + dt u(x_t, t, s)] / (t - r).
    dt = 0 gives u(x_t, t, r) itself (no signal); exact (target = u) for any
    network that is its own flow map.
    """
    s = t - dt
    short = net(x_t, t, s)  # u(x_t, t, s)
    x_s = x_t - _bcast(dt) * short
    far = net(x_s, s, t_next)  # u(x_s, s, r)
    split = (_bcast(s - t_next) * far + _bcast(dt) * short) / _bcast(safe_span(t, t_next))
    return flow_matching_rows(t, t_next, velocity, clip(split, clamp))


@target(
    "shortcut",
    uses_alpha=False,
    teacher=True,
    fp32=True,
    clamps=True,
    source="Shortcut models (Frans et al. 2024); released targets_shortcut.py",
)
@torch.no_grad()
def shortcut_target(net, x_t, t, t_next, dt, velocity, device, clamp: float = 0.0):
    """Shortcut self-consistency: one jump equals two chained half jumps. dt unused.

    With the midpoint m = (t + r) / 2 and the half jump x_m = clip(x_t - (t - m) u(x_t, t, m), c):
        target = clip([u(x_t, t, m) + u(x_m, m, r)] / 2, c).
    The released code clips both the half-jump state and the target to +-4 and
    computes them with the EMA model (the trainer passes the teacher as ``net``).
    Exact (target = u) for any network that is its own flow map.
    """
    mid = 0.5 * (t + t_next)
    first = net(x_t, t, mid)
    second = net(clip(x_t - _bcast(t - mid) * first, clamp), mid, t_next)
    return flow_matching_rows(t, t_next, velocity, clip(0.5 * (first + second), clamp))


def _ema_teacher_fused(net, x_t, t, t_next, dt, velocity, *, continuous: bool, teacher=None, clamp=0.0, ddt=JVP, **_):
    if teacher is None:  # the online network: exactly alphaflow
        return _alphaflow_fused(net, x_t, t, t_next, dt, velocity, continuous=continuous, clamp=clamp, ddt=ddt)
    u = net(x_t, t, t_next)
    with torch.no_grad():
        _, tgt = _alphaflow_fused(teacher, x_t, t, t_next, dt, velocity, continuous=continuous, clamp=clamp, ddt=ddt)
    return u, tgt.detach()


@target(
    "ema_teacher",
    uses_alpha=True,
    teacher=True,
    clamps=True,
    fused=_ema_teacher_fused,
    jvp="alpha = 0",
    source="ours: AlphaFlow's target from an EMA teacher, as BYOL / consistency models use one",
)
@torch.no_grad()
def ema_teacher_target(net, x_t, t, t_next, dt, velocity, device, clamp: float = 0.0):
    """AlphaFlow's target computed by an EMA teacher of the weights (rate ``teacher_decay``).

    The trainer passes the teacher as ``net``; with teacher_decay = 0 it is the
    online network and this is exactly ``alphaflow``.
    """
    return alphaflow_target(net, x_t, t, t_next, dt, velocity, device, clamp)
