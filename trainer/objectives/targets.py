"""Mean-velocity targets: the protocol's ``compute_mean_velocity_target``.

Every entry of ``TARGETS`` has exactly the signature
``compute_mean_velocity_target(net, x_t, t, t_next, dt, velocity, device) -> Tensor``
with x_t, velocity: (N, C, H, W); t, t_next, dt: (N,); ``dt = alpha * (t - t_next)``.
It returns the target, shaped like x_t, with no gradient.

The training step wants more: the prediction u = net(x_t, t, t_next) *with*
gradient and the target from the same pass (one forward-mode JVP yields both).
``FUSED_TARGETS[name]`` is ``fused(net, x_t, t, t_next, dt, velocity, continuous,
teacher) -> (u, target)``, where ``continuous`` is a host-side bool (alpha == 0)
so a compiled step never branches on device data, and ``teacher`` is the
network a target may compute with instead of ``net`` (the EMA teacher of
``ema_teacher``; ``None`` for the others). A target without a fused form gets
the generic one (its own call on the teacher or the net, plus a forward for u).
``TEACHER_TARGETS`` names the targets for which the trainer keeps a teacher.
"""

from __future__ import annotations

import torch

from trainer.registry import Registry

TARGETS = Registry("target")
FUSED_TARGETS = Registry("fused target")
TEACHER_TARGETS: set[str] = set()
# Targets that are differences of near-equal network outputs (self-consistency):
# bf16's ~0.4% rounding is as large as their signal, so they are computed in fp32.
FP32_TARGETS: set[str] = set()


def _bcast(s: torch.Tensor) -> torch.Tensor:
    return s[:, None, None, None]  # (N,) -> (N, 1, 1, 1)


def u_and_dudt(net, x_t, t, t_next, velocity):
    """u(x_t, t, t_next) and its total derivative d/dt along (v, 1, 0), in one forward-mode pass."""
    return torch.func.jvp(net, (x_t, t, t_next), (velocity, torch.ones_like(t), torch.zeros_like(t_next)))


def continuous_target(u_dudt, t, t_next, velocity):
    """MeanFlow: v - (t - t_next) * du/dt. Zero span (t_next == t) gives v exactly."""
    return velocity - _bcast(t - t_next) * u_dudt


def flow_matching_rows(t, t_next, velocity, target):
    """v on flow-matching rows (t_next == t), ``target`` elsewhere."""
    return torch.where(_bcast(t > t_next), target, velocity)


def safe_span(t, t_next):
    """t - t_next, with 1 on zero-span rows so a division there is finite (those rows are replaced by v)."""
    span = t - t_next
    return torch.where(span > 0, span, torch.ones_like(span))


def discrete_target(net, x_t, t, t_next, dt, velocity):
    """AlphaFlow: (dt v + (t - dt - t_next) u(x_t - dt v, t - dt, t_next)) / (t - t_next).

    Rows with t_next == t (zero span) get v; ``dt`` must be alpha * (t - t_next).
    """
    u_mid = net(x_t - _bcast(dt) * velocity, t - dt, t_next)  # (N, C, H, W)
    tgt = (_bcast(dt) * velocity + _bcast(t - t_next - dt) * u_mid) / _bcast(safe_span(t, t_next))
    return flow_matching_rows(t, t_next, velocity, tgt)


@TARGETS.register("pureflow")
@torch.no_grad()
def pureflow_target(net, x_t, t, t_next, dt, velocity, device):
    """Flow matching: the target is the conditional velocity v, whatever the interval."""
    return velocity.clone()


@TARGETS.register("meanflow")
@torch.no_grad()
def meanflow_target(net, x_t, t, t_next, dt, velocity, device):
    """MeanFlow (Geng et al. 2025): v - (t - t_next) * d/dt u(x_t, t, t_next), tangent (v, 1, 0).

    ``dt`` is ignored: this is the alpha -> 0 limit of ``alphaflow``.
    """
    _, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
    return continuous_target(dudt, t, t_next, velocity)


@TARGETS.register("alphaflow")
@torch.no_grad()
def alphaflow_target(net, x_t, t, t_next, dt, velocity, device):
    """AlphaFlow (Zhang et al. 2025), row by row.

    dt > 0: the discrete target (see ``discrete_target``); alpha = 1 gives v.
    dt == 0 and t_next < t: the continuous MeanFlow target (its alpha -> 0 limit).
    t_next == t: v.
    """
    out = velocity.clone()
    span = t - t_next
    cont = (dt == 0) & (span > 0)
    disc = dt > 0
    # Host checks are fine here: the compiled training step uses the fused form.
    if bool(cont.any()):
        out = torch.where(_bcast(cont), meanflow_target(net, x_t, t, t_next, dt, velocity, device), out)
    if bool(disc.any()):
        out = torch.where(_bcast(disc), discrete_target(net, x_t, t, t_next, dt, velocity), out)
    return out


@FUSED_TARGETS.register("pureflow")
def _pureflow_fused(net, x_t, t, t_next, dt, velocity, continuous: bool, teacher=None):
    return net(x_t, t, t_next), velocity


@FUSED_TARGETS.register("meanflow")
def _meanflow_fused(net, x_t, t, t_next, dt, velocity, continuous: bool, teacher=None):
    # The primal output of the JVP keeps its graph to the parameters: it is the
    # prediction the loss differentiates; the tangent only feeds the target.
    u, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
    return u, continuous_target(dudt, t, t_next, velocity).detach()


@FUSED_TARGETS.register("alphaflow")
def _alphaflow_fused(net, x_t, t, t_next, dt, velocity, continuous: bool, teacher=None):
    # alpha is one number per step, so every non-flow-matching row of a batch
    # is either continuous (alpha == 0) or discrete (alpha > 0).
    if continuous:
        return _meanflow_fused(net, x_t, t, t_next, dt, velocity, True)
    u = net(x_t, t, t_next)
    with torch.no_grad():
        tgt = discrete_target(net, x_t, t, t_next, dt, velocity)
    return u, tgt


def fused_target(name: str):
    """The fused form of target ``name``, or a generic one built from its plain function."""
    if name in FUSED_TARGETS:
        return FUSED_TARGETS[name]
    plain = TARGETS[name]

    fp32 = name in FP32_TARGETS

    def generic(net, x_t, t, t_next, dt, velocity, continuous: bool, teacher=None):
        with torch.autocast(x_t.device.type, enabled=not fp32 and torch.is_autocast_enabled(x_t.device.type)):
            tgt = plain(teacher if teacher is not None else net, x_t, t, t_next, dt, velocity, x_t.device)
        return net(x_t, t, t_next), tgt.detach()

    return generic
