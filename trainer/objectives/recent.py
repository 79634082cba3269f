"""Objectives published after MeanFlow, each as its authors released it, or as its paper writes it without code.

Convention of ``trainer.objectives``: x_t = (1 - t) x0 + t x1 (t = 1 is noise),
v = x1 - x0, r = t_next <= t, u = net(x_t, t, r), one step x_r = x_t - (t - r) u;
sg is stop-gradient. Where a release differs from the protocol (its own
network, optimiser or guidance), the closest faithful form is kept and the
difference is stated in its named objective's sources (``named.py``).

- ``imf``: improved MeanFlow (Geng et al. 2025), released ``Lyy-iiis/imeanflow``.
- ``vr_meanflow``: MeanFlow with the JVP's tangent moved from the conditional
  velocity towards the model's (Lu & Wang 2026, arXiv 2605.09235; no public code).
- ``soflow``: solution flow models (Luo, Yuan, Liu 2025), released
  ``zlab-princeton/SoFlow``: a JVP-free solution-consistency loss.
- ``lsd``: flow maps by Lagrangian self-distillation (Boffi, Albergo,
  Vanden-Eijnden 2025, arXiv 2505.18825).
- ``modular``: Modular MeanFlow (You, Liu, He 2025, arXiv 2508.17426): part of
  the gradient through du/dt, by a weight lambda that warms up from 0.

Several of these train through more than (u, target): a second loss on the
same rows (iMF's velocity loss, SoFlow's consistency loss) or a gradient
through du/dt (LSD, Modular MeanFlow). Their fused forms return each row's
loss as a third element (see ``targets.py``).
"""

from __future__ import annotations

import torch

from trainer.objectives.tangent import JVP
from trainer.objectives.time_sampling import SOFLOW_GAP  # also l <= t - 1e-4 (SoFlow train.py 266)
from trainer.objectives.targets import (
    _bcast,
    _meanflow_fused,
    continuous_target,
    flow_matching_rows,
    safe_span,
    target,
    u_and_dudt,
)

IMF = "Lyy-iiis/imeanflow@bf60cd7 imf.py"
SOFLOW = "zlab-princeton/SoFlow@3b60d60 models.py"


# ------------------------------------------------------------------ iMF
def _imf_parts(net, x_t, t, t_next, velocity, ddt=JVP):
    own = net(x_t, t, t)  # the velocity head's stand-in: the network's own u(x_t, t, t)
    u, dudt = u_and_dudt(net, x_t, t, t_next, own.detach(), ddt)
    return own, u, continuous_target(dudt, t, t_next, velocity)


def _imf_fused(net, x_t, t, t_next, dt, velocity, *, rows, ddt=JVP, imf_velocity_rows="all", **_):
    own, u, tgt = _imf_parts(net, x_t, t, t_next, velocity, ddt)
    tgt = tgt.detach()
    # imf.py 385-393: the u-loss and the velocity head's loss, each adaptively weighted, summed per row
    velocity_loss = rows.weighted(own, velocity)
    if imf_velocity_rows == "interval":  # rows r = t already regress u(x_t, t, t) onto v once, by the u-loss
        velocity_loss = torch.where(t > t_next, velocity_loss, torch.zeros_like(velocity_loss))
    return u, tgt, rows.weighted(u, tgt) + velocity_loss


@target(
    "imf",
    uses_alpha=False,
    fused=_imf_fused,
    jvp="always",
    knobs={"imf_velocity_rows": ("all", "interval")},
    source=f"improved MeanFlow (Geng et al. 2025); {IMF} iMeanFlow.forward 331-401",
)
@torch.no_grad()
def imf_target(net, x_t, t, t_next, dt, velocity, device):
    """iMF: v - (t - r) du/dt along (sg u(x_t, t, t), 1, 0), plus a velocity loss on u(x_t, t, t). dt unused.

    imf.py 366-378: the JVP's tangent is the velocity head's own prediction and
    the regressed V = u + (t - r) sg(du/dt) meets the velocity target; V - v =
    u - [v - (t - r) sg(du/dt)], so this is the u-target with the same value and
    gradient. 389-390: the velocity head regresses v too (weight 1). The
    protocol's network has no velocity head: u(x_t, t, t) stands in for it
    (tangent and auxiliary loss), so on rows r = t the one output meets v
    twice (twice the release's weight per head); ``imf_velocity_rows=interval``
    keeps the velocity loss off those rows. Unconditional: iMF's guided target is v.
    """
    return _imf_parts(net, x_t, t, t_next, velocity)[2]


# ---------------------------------------------------------- vr_meanflow
def _vr_tangent(net, x_t, t, velocity, tangent_beta: float):
    if tangent_beta == 0.0:
        return velocity
    with torch.no_grad():
        own = net(x_t, t, t)
    return (1.0 - tangent_beta) * velocity + tangent_beta * own


def _vr_fused(net, x_t, t, t_next, dt, velocity, *, tangent_beta: float = 0.0, ddt=JVP, **_):
    u, dudt = u_and_dudt(net, x_t, t, t_next, _vr_tangent(net, x_t, t, velocity, tangent_beta), ddt)
    return u, continuous_target(dudt, t, t_next, velocity).detach()


@target(
    "vr_meanflow",
    uses_alpha=False,
    fused=_vr_fused,
    jvp="always",
    knobs={"tangent_beta": (0.0, 1.0)},
    source="Lu & Wang 2026 (arXiv 2605.09235), method.tex: the tangent (1 - beta) v + beta v_hat; no public code",
)
@torch.no_grad()
def vr_meanflow_target(net, x_t, t, t_next, dt, velocity, device, tangent_beta: float = 0.0):
    """MeanFlow with tangent (1 - beta) v + beta sg u(x_t, t, t): v - (t - r) du/dt. dt unused.

    beta = ``tangent_beta``. The conditional velocity v is both the regression
    target (kept) and a control variate inside the JVP; beta moves the second
    role to a deterministic proxy v_hat. beta = 0 is MeanFlow, beta = 1 the JVP
    along the model's own velocity (iMF's tangent without its velocity loss).
    The paper's proxy is any velocity estimate (its beta = 1 recipe: an EMA
    copy, plus a flow-matching anchor); here the online network's u(x_t, t, t).
    Its gradient MSE is least near beta = 0.94, its DiT FID best at beta = 0.
    """
    _, dudt = u_and_dudt(net, x_t, t, t_next, _vr_tangent(net, x_t, t, velocity, tangent_beta))
    return continuous_target(dudt, t, t_next, velocity)


# --------------------------------------------------------------- SoFlow
def _soflow_parts(net, x_t, t, t_next, dt, velocity):
    """u(x_t, t, r) with gradient, the sg solution f_l from l = t - dt, and the difference quotient (sg)."""
    gap = dt.clamp_min(SOFLOW_GAP)  # t - l
    u = net(x_t, t, t_next)
    with torch.no_grad():
        x_l = x_t - _bcast(gap) * velocity  # models.py 193: x_l = x_t + v (l - t)
        f_l = x_l - _bcast(t - gap - t_next) * net(x_l, t - gap, t_next)  # 196-197, Euler: f = x + (s - l) NN
        f_t = x_t - _bcast(t - t_next) * u.detach()  # 190
        quotient = (f_t - f_l) / _bcast(gap)  # 198
    return u, f_l, quotient


def _soflow_fused(net, x_t, t, t_next, dt, velocity, *, rows, **_):
    u, f_l, quotient = _soflow_parts(net, x_t, t, t_next, dt, velocity)
    # models.py 199-202: w = 1 / (mean dq^2 + eps)^p; loss = sgn(b) mean(NN_t dq w), b = s - t < 0
    consistency = -rows.reduce(u * quotient) * rows.weight(rows.reduce(quotient.pow(2)))
    tgt = flow_matching_rows(t, t_next, velocity, (x_t - f_l) / _bcast(safe_span(t, t_next))).detach()
    flow = rows.weighted(u, velocity)  # 150-154: the velocity loss, adaptively weighted
    return u, tgt, torch.where(t > t_next, consistency, flow)


@target(
    "soflow",
    uses_alpha=True,
    discrete=False,
    fused=_soflow_fused,
    source=f"SoFlow (Luo, Yuan, Liu 2025, arXiv 2512.15657); {SOFLOW} get_velocity_loss 122-158, get_consistency_loss "
    "161-207",
)
@torch.no_grad()
def soflow_target(net, x_t, t, t_next, dt, velocity, device):
    """SoFlow: u such that x_t's jump to r lands on sg f_l: (x_t - f_l) / (t - r). No JVP.

    alpha is SoFlow's middle-time ratio: l = t - alpha (t - r) (at least 1e-4
    below t), x_l = x_t - (t - l) v and f_l = x_l - (l - r) u(x_l, l, r), the
    network's own solution from l. The released loss is not the squared error
    to this target: it is -mean(u * dq) * w per row, with dq = sg(f_t - f_l) /
    (t - l) and w = 1 / (mean dq^2 + eps)^p, whose gradient is that of the
    squared error scaled by w (t - r) / (2 (t - l)); the trainer uses the
    released form, and the adaptively weighted flow-matching loss on rows with
    t_next = t.
    """
    _, f_l, _ = _soflow_parts(net, x_t, t, t_next, dt, velocity)
    return flow_matching_rows(t, t_next, velocity, (x_t - f_l) / _bcast(safe_span(t, t_next)))


# ------------------------------------------------------------------ LSD
def _lsd_parts(net, x_t, t, t_next, velocity, ddt=JVP, teacher=None):
    """u, d/dr u (with their graphs) and the sg velocity at the jump's end (v on zero-span rows), by ``teacher``
    (an EMA of ``net``: TVM) or by ``net`` itself (None: LSD)."""
    zero, one = torch.zeros_like(t), torch.ones_like(t_next)
    u, dudr = ddt(net, (x_t, t, t_next), (torch.zeros_like(x_t), zero, one), grad=True)
    with torch.no_grad():
        b = net if teacher is None else teacher  # LSD: the online weights
        end = b(x_t - _bcast(t - t_next) * u, t_next, t_next)  # b_r(X)
    return u, dudr, flow_matching_rows(t, t_next, velocity, end)


def _lsd_fused(net, x_t, t, t_next, dt, velocity, *, rows, ddt=JVP, teacher=None, **_):
    u, dudr, end = _lsd_parts(net, x_t, t, t_next, velocity, ddt, teacher)
    span = _bcast(t - t_next)
    # the Lagrangian residual d/dr X_{t->r} - b_r(X): the gradient flows through u and d/dr u
    return u, (end + span * dudr).detach(), rows.weighted(u - span * dudr, end)


@target(
    "lsd",
    uses_alpha=False,
    fused=_lsd_fused,
    jvp="always, with gradient",
    source="Lagrangian self-distillation (Boffi, Albergo, Vanden-Eijnden 2025, arXiv 2505.18825); read in "
    "Keely-Ai/flow-maps py/common/losses.py lsd_term, diagonal_term",
)
@torch.no_grad()
def lsd_target(net, x_t, t, t_next, dt, velocity, device):
    """LSD: sg[u(X, r, r) + (t - r) d/dr u(x_t, t, r)], X = x_t - (t - r) u. dt unused.

    The flow map X(x_t; t -> r) = x_t - (t - r) u(x_t, t, r) solves the ODE in
    r: dX/dr = u - (t - r) du/dr must equal the velocity at X, taken from the
    model itself (u(X, r, r), sg, the online weights as the release's
    ``teacher_params = params``). The loss trains the residual
    u - (t - r) du/dr - sg u(sg X, r, r), with the gradient through du/dr;
    this target has the same squared error. Rows with t_next = t get v (the
    release's diagonal flow-matching term).
    """
    u, dudr, end = _lsd_parts(net, x_t, t, t_next, velocity)
    return end + _bcast(t - t_next) * dudr


# -------------------------------------------------------- Modular MeanFlow
def _modular_fused(net, x_t, t, t_next, dt, velocity, *, continuous: bool, rows, ddt=JVP, **_):
    if continuous:  # lambda = 0: MeanFlow's stop-gradient exactly
        return _meanflow_fused(net, x_t, t, t_next, dt, velocity, continuous=True, ddt=ddt)
    lam = dt / safe_span(t, t_next)  # alpha, row by row
    u, dudt = u_and_dudt(net, x_t, t, t_next, velocity, ddt, grad=True)
    tgt = continuous_target(dudt, t, t_next, velocity).detach()
    # SG_lambda[du/dt] = lambda du/dt + (1 - lambda) sg(du/dt): the value of u, a share lambda of the gradient
    modulated = u + _bcast(lam * (t - t_next)) * (dudt - dudt.detach())
    return u, tgt, rows.weighted(modulated, tgt)


@target(
    "modular",
    uses_alpha=True,
    discrete=False,
    fused=_modular_fused,
    jvp="always, with gradient when alpha > 0",
    source="Modular MeanFlow (You, Liu, He 2025, arXiv 2508.17426), gradient modulation SG_lambda; no official code",
)
@torch.no_grad()
def modular_target(net, x_t, t, t_next, dt, velocity, device):
    """Modular MeanFlow: MeanFlow's target; alpha = lambda, the share of the gradient through du/dt.

    Loss ||u + (t - r) SG_lambda[du/dt] - v||^2 with SG_lambda[z] = lambda z +
    (1 - lambda) sg(z): lambda = 0 is MeanFlow, lambda = 1 the full gradient.
    The target's value is MeanFlow's at every lambda; lambda only changes the
    gradient (the trainer's fused form).
    """
    _, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
    return continuous_target(dudt, t, t_next, velocity)
