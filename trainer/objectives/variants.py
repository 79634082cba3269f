"""Target variants beyond the reference table, each from its paper's identity.

All follow the convention of ``trainer.objectives`` and the protocol signature
``target(net, x_t, t, t_next, dt, velocity, device)``; rows with t_next == t get
v. r stands for t_next below.

Self-consistency targets (``splitmeanflow``, ``shortcut``) start with a row
error near 0 (the untrained net agrees with itself), so MeanFlow's adaptive
weight 1 / (e + eps) gives those rows weight ~1/eps and they swamp the
flow-matching rows: their objectives default to plain MSE (adaptive_p = 0, as
in their papers), and their targets are computed in fp32 (``FP32_TARGETS``).
"""

from __future__ import annotations

import torch

from trainer.objectives.targets import (
    FP32_TARGETS,
    FUSED_TARGETS,
    TARGETS,
    TEACHER_TARGETS,
    flow_matching_rows,
    safe_span,
    _bcast,
    alphaflow_target,
    discrete_target,
    u_and_dudt,
)


@TARGETS.register("splitmeanflow")
@torch.no_grad()
def splitmeanflow_target(net, x_t, t, t_next, dt, velocity, device):
    """SplitMeanFlow (Guo et al. 2025): interval splitting, no JVP.

    For r < s < t, additivity of displacements gives
        (t - r) u(x_t, t, r) = (s - r) u(x_s, s, r) + (t - s) u(x_t, t, s).
    The split point is s = t - dt (dt = alpha (t - r): alpha is the searched
    split fraction) and x_s = x_t - dt v lies on the conditional path, so
        target = [(s - r) u(x_s, s, r) + dt u(x_t, t, s)] / (t - r).
    It is AlphaFlow's discrete target with v replaced by the model's own
    short-interval velocity u(x_t, t, s); as alpha -> 0 it tends to
    u + alpha (u(x_t, t, t) - (t - r) du/dt|(v, 1, 0) - u). Rows with dt = 0
    get that limit's target u(x_t, t, t) - (t - r) du/dt (one JVP).
    """
    span = t - t_next
    short = net(x_t, t, t - dt)  # u(x_t, t, s)
    far = net(x_t - _bcast(dt) * velocity, t - dt, t_next)  # u(x_s, s, r)
    split = (_bcast(span - dt) * far + _bcast(dt) * short) / _bcast(safe_span(t, t_next))
    cont = (dt == 0) & (span > 0)
    if bool(cont.any()):
        _, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
        limit = net(x_t, t, t) - _bcast(span) * dudt
        split = torch.where(_bcast(cont), limit, split)
    return flow_matching_rows(t, t_next, velocity, split)


@TARGETS.register("shortcut")
@torch.no_grad()
def shortcut_target(net, x_t, t, t_next, dt, velocity, device):
    """Shortcut-model self-consistency (Frans et al. 2024): one jump equals two chained half jumps.

    With the midpoint s = (t + r) / 2 and the model's own half jump
    x_s = x_t - (t - s) u(x_t, t, s):
        target = [u(x_t, t, s) + u(x_s, s, r)] / 2.
    Exact (target = u) for any network that is its own flow map, e.g. the true
    mean velocity of a point mass; flow-matching rows anchor it to data. ``dt`` is unused.
    """
    mid = 0.5 * (t + t_next)
    first = net(x_t, t, mid)
    second = net(x_t - _bcast(t - mid) * first, mid, t_next)
    return flow_matching_rows(t, t_next, velocity, 0.5 * (first + second))


@TARGETS.register("imf")
@torch.no_grad()
def imf_target(net, x_t, t, t_next, dt, velocity, device):
    """Velocity-anchored MeanFlow (the "improved MeanFlow" reformulation of the MeanFlow loss).

    The loss is on the implied instantaneous velocity V = u + (t - r) sg(du/dt)
    against v, with the JVP tangent (u(x_t, t, t), 1, 0): the model's own
    velocity instead of the sample's v (which the model never sees at test time).
    As a target for u: v - (t - r) du/dt|(sg u(x_t, t, t), 1, 0). It equals the
    MeanFlow target wherever the model's velocity equals v. ``dt`` is unused.
    """
    own = net(x_t, t, t)
    _, dudt = u_and_dudt(net, x_t, t, t_next, own)
    return flow_matching_rows(t, t_next, velocity, velocity - _bcast(t - t_next) * dudt)


@FUSED_TARGETS.register("imf")
def _imf_fused(net, x_t, t, t_next, dt, velocity, continuous: bool, teacher=None):
    with torch.no_grad():
        own = net(x_t, t, t)
    u, dudt = u_and_dudt(net, x_t, t, t_next, own)  # primal u keeps its graph
    return u, flow_matching_rows(t, t_next, velocity, velocity - _bcast(t - t_next) * dudt).detach()


@TARGETS.register("ema_teacher")
@torch.no_grad()
def ema_teacher_target(net, x_t, t, t_next, dt, velocity, device):
    """The AlphaFlow/MeanFlow target computed by an EMA teacher (a teacher for free).

    Same formula as ``alphaflow``; the trainer passes an EMA of the online
    weights (rate ``teacher_decay``) as ``net``, so the target moves slowly
    (as in BYOL / consistency models). With teacher_decay = 0 the teacher is the
    online network and this is exactly ``alphaflow``.
    """
    return alphaflow_target(net, x_t, t, t_next, dt, velocity, device)


@FUSED_TARGETS.register("ema_teacher")
def _ema_teacher_fused(net, x_t, t, t_next, dt, velocity, continuous: bool, teacher=None):
    teacher = net if teacher is None else teacher
    u = net(x_t, t, t_next)
    with torch.no_grad():
        if continuous:
            _, dudt = u_and_dudt(teacher, x_t, t, t_next, velocity)
            tgt = velocity - _bcast(t - t_next) * dudt
        else:
            tgt = discrete_target(teacher, x_t, t, t_next, dt, velocity)
    return u, tgt


TEACHER_TARGETS.add("ema_teacher")
FP32_TARGETS.update({"splitmeanflow", "shortcut"})
