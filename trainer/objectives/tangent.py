"""How a target takes the directional derivative of the network: forward-mode AD or a central difference.

Every target that needs du/dt along a tangent (MeanFlow's (v, 1, 0), iMF's
(sg u(x_t, t, t), 1, 0), LSD's (0, 0, 1), ...) asks a :class:`Tangent` for it,
so one config key (``tangent``) switches every one of them:

- ``jvp``: ``torch.func.jvp``, exact to rounding. Forward mode has no rule for
  the fused attention kernel, so the online network runs math attention.
- ``fd``: the central difference of two more forwards,
  [u(p + eps d) - u(p - eps d)] / (2 eps) at the primal p along the tangent d,
  TiM's ``derivative_type='dde'`` (``WZDTHU/TiM`` ``tim/schedulers/transition.py``;
  its epsilon 0.005 is the default ``tangent_eps``). Error O(eps^2 |u'''|)
  plus rounding O(|u| 2^-m / eps) (m = 23 in fp32, 8 in bf16): the two
  forwards run in fp32 even under bf16 autocast. No JVP, so the fused
  attention kernel. Without a gradient through the derivative the
  two extra forwards run under ``no_grad`` and keep no activations.

The primal output always carries its graph (it is the prediction the loss
differentiates). ``grad=True`` asks for a derivative that carries one too
(targets that train through du/dt: LSD, Modular MeanFlow, TVM).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

TANGENTS = ("jvp", "fd")
FD_EPS = 0.005  # TiM's dde epsilon (tim/schedulers/transition.py)


@dataclass(frozen=True)
class Tangent:
    kind: str = "jvp"  # jvp | fd
    eps: float = FD_EPS  # the central difference's half step (fd only)

    def __call__(self, net, primals: tuple, tangents: tuple, *, grad: bool = False):
        """(net(*primals), d/ds net(*(primals + s tangents)) at s = 0).

        primals, tangents: matching tuples of tensors, e.g. (x_t, t, r) and (v, 1, 0).
        """
        if self.kind == "jvp":
            return torch.func.jvp(net, primals, tangents)
        out = net(*primals)
        step = self.eps
        # fp32 even under bf16 autocast: bf16's rounding of u (2^-9 of |u|) over 2 eps would pass du/dt itself
        # (measured: 41% error at eps 0.005 on the tiny network, against 0.004% in fp32; docs/objectives.md)
        with contextlib.nullcontext() if grad else torch.no_grad(), torch.autocast(out.device.type, enabled=False):
            plus = net(*(p + step * d for p, d in zip(primals, tangents)))
            minus = net(*(p - step * d for p, d in zip(primals, tangents)))
        acc = torch.promote_types(plus.dtype, torch.float32)  # the difference itself in fp32 at least
        return out, (plus.to(acc) - minus.to(acc)) / (2 * step)


JVP = Tangent()
