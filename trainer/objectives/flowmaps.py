"""Few-step objectives of late 2025 with released training code, each as its authors released it.

Convention of ``trainer.objectives``: x_t = (1 - t) x0 + t x1 (t = 1 is noise),
v = x1 - x0, r = t_next <= t, u = net(x_t, t, r), one step x_r = x_t - (t - r) u;
sg is stop-gradient. All three releases use this path and time direction.

- ``tvm``: Terminal Velocity Matching (arXiv 2511.19797), ``lumalabs/tvm``:
  the derivative of the jump in its end time, d/dr [x_t - (t - r) u] =
  -(u - (t - r) du/dr), meets an EMA teacher's velocity where the jump lands;
  the gradient flows through the JVP (``detach_jvp=False``).
- ``tim``: Transition Models (arXiv 2509.04394), ``WZDTHU/TiM``: MeanFlow's
  target with its time weighting, a directional (cosine) term and the
  adaptive weight of the whole; its derivative is a finite difference by
  default (``tangent=fd``).
- ``dmf``: Decoupled MeanFlow (arXiv 2510.24474), ``kyungmnlee/dmf``: flow
  matching and MeanFlow rows, each under a learned log-variance weight
  log(e exp(-lv) + 0.01) + lv, lv a linear function of sinusoidal features of
  (t, r) trained with the network (``net.head``).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.model import timestep_embedding
from trainer.objectives.tangent import JVP
from trainer.objectives.recent import _lsd_fused, lsd_target
from trainer.objectives.targets import continuous_target, flow_matching_rows, target, u_and_dudt

TVM = "lumalabs/tvm@82e8e5d training/wrapper.py"
TIM = "WZDTHU/TiM@b431859 tim/schedulers/transition.py"
DMF = "kyungmnlee/dmf@a6db0f6 loss.py"


# ------------------------------------------------------------------ TVM
# LSD's residual (recent.py) with the end velocity from the EMA teacher: the record's ``teacher`` makes the
# trainer pass it, and LSD's fused form computes the end velocity with it.
@target(
    "tvm",
    uses_alpha=False,
    teacher=True,
    fused=_lsd_fused,
    jvp="always, with gradient",
    source=f"Terminal Velocity Matching (Zhou, Parger, Haque, Song 2025, arXiv 2511.19797); {TVM} get_dfds "
    "83-114, forward 144-186; training/loss.py sample_ts 39-64",
)
@torch.no_grad()
def tvm_target(net, x_t, t, t_next, dt, velocity, device):
    """TVM: sg[u_ema(X, r, r) + (t - r) du/dr], X = x_t - (t - r) u. dt unused.

    wrapper.py 112-113: the jump f = x_t - (t - r) u and its derivative in the end
    time, df/dr = -(u - (t - r) du/dr) (the JVP along (0, 0, 1)); 177: its
    squared error to the teacher's velocity at sg f, u_ema(f, r, r) (154-160,
    the 0.99 EMA). The loss trains u - (t - r) du/dr with the gradient through
    du/dr (``detach_jvp`` False); this target has the same squared error.
    Rows with r = t get v (180: the flow-matching term). This protocol function
    has no teacher: with the online net in its place it is ``lsd``'s target.
    """
    return lsd_target(net, x_t, t, t_next, dt, velocity, device)


# ------------------------------------------------------------------ TiM
TIM_WEIGHTS = ("sqrt", "constant", "reciprocal", "square", "soft_min_snr")  # transition.py 150-161; sqrt: configs
TIM_TIME_MAPS = ("tangent", "sigmoid", "identity")  # 142-145: tan t, t / (1 - t), t; tangent: every config


def tim_time_weight(t, t_next, kind: str, time_map: str):
    """transition.py 141-163: w(g(t) - g(r)), g = tan, t / (1 - t) or identity, sigma_d = 1; 1 on rows r = t."""
    a, b = t, t_next
    if time_map == "tangent":
        a, b = torch.tan(t), torch.tan(t_next)
    elif time_map == "sigmoid":
        a, b = t / (1 - t), t_next / (1 - t_next)
    delta = a - b
    weight = {
        "constant": lambda d: torch.ones_like(d),
        "reciprocal": lambda d: 1 / (d + 1.0),
        "sqrt": lambda d: 1 / (d + 1.0).sqrt(),
        "square": lambda d: 1 / (d + 1.0) ** 2,
        "soft_min_snr": lambda d: 1 / (d**2 + 1.0),
    }[kind](delta)
    return torch.where(t > t_next, weight, torch.ones_like(weight))


def _tim_fused(
    net, x_t, t, t_next, dt, velocity, *, rows, ddt=JVP, tim_weight="sqrt", tim_time_map="tangent", tim_dir=1.0, **_
):
    u, dudt = u_and_dudt(net, x_t, t, t_next, velocity, ddt)
    tgt = continuous_target(dudt, t, t_next, velocity).detach()  # transition.py 202 (transports.py 69)
    err = rows.error(u, tgt)  # 203: the mean over pixels of (F - F_target)^2
    if tim_dir:  # 206-209: + the mean over pixels of 1 - cos(F, F_target) over channels
        acc = torch.promote_types(u.dtype, torch.float32)  # fp32 at least, as the row error
        cos = torch.nn.functional.cosine_similarity(u.to(acc), tgt.to(acc), dim=1)
        err = err + tim_dir * (1 - cos).flatten(1).mean(1)
    # 211-213: time weight times 1 / (sg(loss) + eps), eps 1e-5 (the objective's adaptive_eps)
    return u, tgt, tim_time_weight(t, t_next, tim_weight, tim_time_map) * rows.weight(err) * err


@target(
    "tim",
    uses_alpha=False,
    fused=_tim_fused,
    jvp="always (tangent=jvp)",
    knobs={"tim_weight": TIM_WEIGHTS, "tim_time_map": TIM_TIME_MAPS, "tim_dir": (0.0, 1.0)},
    source=f"Transition Models (Wang et al. 2025, arXiv 2509.04394); {TIM} TransitionSchedule.__call__ 171-213, "
    "time_weighting 141-163, dde_derivative 108-129",
)
@torch.no_grad()
def tim_target(net, x_t, t, t_next, dt, velocity, device):
    """TiM: v - (t - r) dF/dt along (v, 1, 0), MeanFlow's target; its loss weights it by time and direction.

    transition.py 202 (transports.py 69): F_target = v - (t - r) dF/dt; 203-213:
    the row loss (mean over pixels of the squared error plus ``tim_dir`` times
    the mean of 1 - cos(F, F_target) over channels) times w(t, r)
    (``tim_weight`` of the ``tim_time_map``-warped times) and 1 / (sg(loss) +
    eps). The released derivative is the central difference (``tangent=fd``,
    its epsilon 0.005); ``tangent=jvp`` is its ``derivative_type='jvp'``.
    """
    _, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
    return continuous_target(dudt, t, t_next, velocity)


# ------------------------------------------------------------------ DMF
class LogVariance(nn.Module):
    """DMF's log-variance: one linear layer on [emb(t), emb(r)], 128 sinusoids each, raw t; zero at the start.

    models/dmft.py 69-71, 113-115, 145-149 (``timestep_embedding`` dim 128, models/layers.py 46-55).
    """

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(256, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, t, t_next):  # (N,), (N,) -> (N,)
        feats = torch.cat([timestep_embedding(t, 128), timestep_embedding(t_next, 128)], dim=1)
        return self.linear(feats.to(self.linear.weight.dtype))[:, 0]


DMF_PAIRS = ("batch", "row")


def dmf_row_loss(err, lv, fm_rows, eps: float, pairs: str):
    """loss.py 30-35: log(e exp(-lv) + eps) + lv. err, lv: (N,); fm_rows: (N,) bool -> (N,).

    ``batch``: the release's (34): e (N,) meets lv (N, 1, 1, 1), so the loss is
    the mean over every pair (i, j) of one term (flow or MeanFlow rows: 157,
    173) of log(e_j exp(-lv_i) + eps) + lv_i; each row's share here is its
    mean over i. ``row``: the per-row form log(e_j exp(-lv_j) + eps) + lv_j.
    """
    if pairs == "row":
        return torch.log(err * torch.exp(-lv) + eps) + lv
    pair = torch.log(err[None, :] * torch.exp(-lv)[:, None] + eps) + lv[:, None]  # (i, j)
    same = (fm_rows[:, None] == fm_rows[None, :]).to(pair.dtype)  # a term's rows pair among themselves
    return (pair * same).sum(0) / same.sum(0)


def _dmf_fused(net, x_t, t, t_next, dt, velocity, *, rows, ddt=JVP, dmf_pairs="batch", **_):
    u, dudt = u_and_dudt(net, x_t, t, t_next, velocity, ddt)  # 168-170: tangent (v, 1, 0), r held
    tgt = continuous_target(dudt, t, t_next, velocity).detach()  # 171-172 (v on rows r = t: 153-157)
    lv = net.head(t, t_next).to(torch.promote_types(u.dtype, torch.float32))  # fp32 at least
    # 174: 0.5 (flow + MeanFlow) per sample: here half the rows each (ratio_fm 0.5), so the same mean
    return u, tgt, dmf_row_loss(rows.error(u, tgt), lv, t == t_next, rows.eps, dmf_pairs)


@target(
    "dmf",
    uses_alpha=False,
    fused=_dmf_fused,
    jvp="always",
    knobs={"dmf_pairs": DMF_PAIRS},
    head=LogVariance,
    source=f"Decoupled MeanFlow (Lee et al. 2025, arXiv 2510.24474); {DMF} DMFLoss.__call__ 142-181, log_lv_loss "
    "30-35; models/dmft.py 145-149",
)
@torch.no_grad()
def dmf_target(net, x_t, t, t_next, dt, velocity, device):
    """DMF: MeanFlow's target v - (t - r) du/dt along (v, 1, 0); each row's loss is log(e exp(-lv) + eps) + lv.

    loss.py 168-173; lv(t, r) is ``net.head`` (see ``LogVariance``), trained
    with the network: its gradient pushes lv down, so the weight 1 / (e + eps
    exp(lv)) moves from MeanFlow's adaptive weight (eps 0.01) towards 1 / e.
    """
    _, dudt = u_and_dudt(net, x_t, t, t_next, velocity)
    return flow_matching_rows(t, t_next, velocity, continuous_target(dudt, t, t_next, velocity))
