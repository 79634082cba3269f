"""Mean-velocity targets: the protocol's ``compute_mean_velocity_target``, one record each.

Every target is registered once with ``@target(name, ...)``; ``TARGETS[name]``
is its :class:`Target` record and ``TARGETS[name].fn`` has exactly the protocol
signature ``compute_mean_velocity_target(net, x_t, t, t_next, dt, velocity, device)``
with x_t, velocity: (N, C, H, W); t, t_next, dt: (N,); ``dt = alpha * (t - t_next)``
row by row. It returns the target, shaped like x_t, with no gradient. A target
that clips (``clamps=True``) also takes ``clamp=c`` (0 = off), bound from the
config by the trainer.

The training step wants more: the prediction u = net(x_t, t, t_next) *with*
gradient and the target from the same pass (one forward-mode JVP yields both).
A record's ``fused`` form is ``fused(net, x_t, t, t_next, dt, velocity, *,
continuous, teacher, clamp, rows, ddt, **knobs) -> (u, target)``: ``continuous`` is
a host bool (alpha == 0) so a compiled step never branches on device data,
``teacher`` is the network a teacher target computes with (an EMA of ``net``;
``None`` otherwise), ``rows`` the trial's row error and adaptive weight
(``trainer.objectives.loss.RowLoss``), ``ddt`` how it takes du/dt (a
``tangent.Tangent``: the JVP or a finite difference) and ``knobs`` the
target's own settings.
A target whose loss is more than the weighted error of (u, target) (a second
loss on the same rows, or a gradient through its target) returns a third
element, each row's loss (N,), which the training loss then averages as it is;
u and the target stay what they are for every target: u = net(x_t, t, t_next)
and the protocol function's value. A target without a fused form gets the
generic one (its own call on the teacher or the net, plus a forward for u).

What the rest of the code needs to know about a target lives in its record:
``uses_alpha`` (the search spaces search an alpha schedule only then),
``discrete`` (alpha is a discrete step: rows with dt > 0 take
``discrete_weight``), ``teacher`` (the trainer keeps an EMA teacher), ``fp32``
(computed in fp32 even under bf16 autocast), ``clamps`` (honours
``target_clamp``), ``knobs`` (config keys it takes, with their search
ranges), ``jvp`` (when it takes a forward-mode derivative) and ``source``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch

from trainer.objectives.tangent import JVP, Tangent
from trainer.registry import Registry

TARGETS = Registry("target")


@dataclass(frozen=True)
class Target:
    name: str
    fn: Callable  # the protocol function
    fused: Callable | None = None  # (u, target) in one pass, or None for the generic form
    uses_alpha: bool = False  # reads dt: its objective has an alpha schedule worth searching
    teacher: bool = False  # computes its target with an EMA teacher (``teacher_decay``)
    fp32: bool = False  # a difference of near-equal network outputs: bf16 rounding is as large as the signal
    clamps: bool = False  # clips its computed target (and states) to [-target_clamp, target_clamp]
    source: str = ""  # the paper or released code it follows
    discrete: bool = False  # alpha is a discrete step: rows with dt > 0 take ``discrete_weight``
    knobs: dict = field(default_factory=dict)  # config key -> (lo, hi) search range, or a tuple of names: its own
    jvp: str = "no"  # when it takes a JVP: "no", "always", "alpha = 0" (and "with gradient" through it)
    head: Callable | None = None  # builds a module the loss trains with the network (``net.head``), e.g. DMF's weight

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]


def is_choice(knob) -> bool:
    """A knob's search spec is a tuple of names (a choice), not a (lo, hi) range."""
    return all(isinstance(v, str) for v in knob)


def knob_middle(knob):
    """A knob's middle value: the middle of its range, or its first name (the release's choice)."""
    return knob[0] if is_choice(knob) else 0.5 * (knob[0] + knob[1])


def attach_head(net, name: str):
    """Gives ``net`` the module target ``name`` trains with it (``net.head``), if it has one; returns ``net``."""
    factory = TARGETS[name].head
    if factory is not None:
        net.head = factory().to(next(net.parameters()))
    return net


def target(name: str, *, uses_alpha: bool, discrete=None, **facts):
    """Registers the decorated protocol function as target ``name`` with its facts (see :class:`Target`).

    ``discrete`` defaults to ``uses_alpha``: alpha is AlphaFlow's discrete step unless a target says otherwise.
    """

    def deco(fn):
        rec = Target(name, fn, uses_alpha=uses_alpha, discrete=uses_alpha if discrete is None else discrete, **facts)
        TARGETS.register(name)(rec)
        return fn

    return deco


# ------------------------------------------------------------------ pieces
def _bcast(s: torch.Tensor) -> torch.Tensor:
    return s[:, None, None, None]  # (N,) -> (N, 1, 1, 1)


def clip(x: torch.Tensor, c: float) -> torch.Tensor:
    """x clipped to [-c, c]; c = 0 leaves it as it is."""
    return x.clamp(-c, c) if c > 0 else x


def u_and_dudt(net, x_t, t, t_next, velocity, ddt: Tangent = JVP, grad: bool = False):
    """u(x_t, t, t_next) and its total derivative d/dt along (velocity, 1, 0), by ``ddt`` (see ``tangent.py``)."""
    return ddt(net, (x_t, t, t_next), (velocity, torch.ones_like(t), torch.zeros_like(t_next)), grad=grad)


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


def discrete_target(net, x_t, t, t_next, dt, velocity, clamp: float = 0.0):
    """AlphaFlow: clip((dt v + (t - dt - t_next) u(x_t - dt v, t - dt, t_next)) / (t - t_next), c).

    Rows with t_next == t (zero span) get v; ``dt`` must be alpha * (t - t_next).
    AlphaFlow's loss.py (``_compute_mean_velocity_d``) clips exactly these targets to ``clamp_utgt``.
    """
    u_mid = net(x_t - _bcast(dt) * velocity, t - dt, t_next)  # (N, C, H, W)
    tgt = (_bcast(dt) * velocity + _bcast(t - t_next - dt) * u_mid) / _bcast(safe_span(t, t_next))
    return flow_matching_rows(t, t_next, velocity, clip(tgt, clamp))


# ------------------------------------------------------------- fused forms
def _pureflow_fused(net, x_t, t, t_next, dt, velocity, *, continuous: bool, teacher=None, clamp=0.0, **_):
    return net(x_t, t, t_next), velocity


def _meanflow_fused(net, x_t, t, t_next, dt, velocity, *, continuous: bool, ddt=JVP, **_):
    # The primal output of the JVP keeps its graph to the parameters: it is the
    # prediction the loss differentiates; the tangent only feeds the target.
    u, dudt = u_and_dudt(net, x_t, t, t_next, velocity, ddt)
    return u, continuous_target(dudt, t, t_next, velocity).detach()


def _alphaflow_fused(net, x_t, t, t_next, dt, velocity, *, continuous: bool, clamp=0.0, ddt=JVP, **_):
    # alpha is one number per step, so every non-flow-matching row of a batch
    # is either continuous (alpha == 0) or discrete (alpha > 0).
    if continuous:
        return _meanflow_fused(net, x_t, t, t_next, dt, velocity, continuous=True, ddt=ddt)
    u = net(x_t, t, t_next)
    with torch.no_grad():
        tgt = discrete_target(net, x_t, t, t_next, dt, velocity, clamp)
    return u, tgt


# ------------------------------------------------------------------ targets
@target("pureflow", uses_alpha=False, fused=_pureflow_fused, source="flow matching (Lipman et al. 2023)")
@torch.no_grad()
def pureflow_target(net, x_t, t, t_next, dt, velocity, device):
    """Flow matching: the target is the conditional velocity v, whatever the interval."""
    return velocity.clone()


@target(
    "meanflow",
    uses_alpha=False,
    fused=_meanflow_fused,
    jvp="always",
    source="MeanFlow (Geng et al. 2025), Eq. 6; py-meanflow meanflow.py and meanflow (JAX) meanflow.py",
)
@torch.no_grad()
def meanflow_target(net, x_t, t, t_next, dt, velocity, device):
    """MeanFlow: v - (t - t_next) * d/dt u(x_t, t, t_next) along (v, 1, 0); dt unused (alphaflow's alpha -> 0)."""
    _, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
    return continuous_target(dudt, t, t_next, velocity)


@target(
    "alphaflow",
    uses_alpha=True,
    clamps=True,
    fused=_alphaflow_fused,
    jvp="alpha = 0",
    source="AlphaFlow (Zhang et al. 2025); released src/training/loss.py AlphaFlowLoss",
)
@torch.no_grad()
def alphaflow_target(net, x_t, t, t_next, dt, velocity, device, clamp: float = 0.0):
    """AlphaFlow: the discrete target where dt > 0, MeanFlow's where dt == 0 < t - t_next, v where t_next == t.

    dt > 0: see ``discrete_target`` (clipped to ``clamp``); alpha = 1 gives v.
    The released loss routes dt == 0 rows to the JVP branch, unclipped.
    """
    out = velocity.clone()
    span = t - t_next
    cont = (dt == 0) & (span > 0)
    disc = dt > 0
    # Host checks are fine here: the compiled training step uses the fused form.
    if bool(cont.any()):
        out = torch.where(_bcast(cont), meanflow_target(net, x_t, t, t_next, dt, velocity, device), out)
    if bool(disc.any()):
        out = torch.where(_bcast(disc), discrete_target(net, x_t, t, t_next, dt, velocity, clamp), out)
    return out


def fused_target(name: str):
    """The fused form of target ``name``, or a generic one built from its plain function."""
    rec = TARGETS[name]
    if rec.fused is not None:
        return rec.fused
    plain = rec.fn

    def generic(net, x_t, t, t_next, dt, velocity, *, continuous: bool, teacher=None, clamp=0.0, **_):
        kwargs = {"clamp": clamp} if rec.clamps else {}
        # fp32 targets leave autocast; the others keep whatever precision the step runs in
        with torch.autocast(x_t.device.type, enabled=False) if rec.fp32 else contextlib.nullcontext():
            tgt = plain(teacher if teacher is not None else net, x_t, t, t_next, dt, velocity, x_t.device, **kwargs)
        return net(x_t, t, t_next), tgt.detach()

    return generic
