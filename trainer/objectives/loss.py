"""Loss weighting.

Row error (``loss_reduction``): the squared error of a row averaged over its
pixels (``mean``, AlphaFlow's loss.py ``.flatten(1).mean(1)``) or summed
(``sum``, both MeanFlow codes: ``jnp.sum(loss, axis=(1, 2, 3))``). With the
adaptive weight the two differ in what eps means: summing is averaging with
eps / D (D = 3072 pixels) and, for p != 1, a constant factor D^(1-p).

Adaptive weighting (MeanFlow, Geng et al. 2025, Sec. 4.3): with the row error
e, the row's loss is sg(w) * e with w = 1 / (sg(e) + eps)^p. p = 1 makes the
loss ~ e / (e + eps): a robust, scale-free objective; p = 0 is plain MSE.

Discrete rows (dt > 0) get an extra weight (``discrete_weight``). The discrete
target is u + alpha (meanflow_target - u) + O(alpha^2), so a discrete row's
error is e_d ~ alpha^2 e_mf and its gradient ~ alpha * a MeanFlow row's. The
adaptive weight (p = 1) divides by e_d + eps: while alpha^2 e_mf >> eps a
discrete row's gradient is ~ 1/alpha times a MeanFlow row's.
- ``alpha`` (default; AlphaFlow's released loss: ``weight_d = ones * alpha``)
  brings that back to about 1x a MeanFlow row's.
- ``inv_alpha`` (1/alpha, as the AlphaFlow paper writes the loss) makes it
  ~ 1/alpha^2 (x100 at alpha 0.1): the flow-matching rows' share of the
  gradient all but vanishes late in the curriculum. Its limit argument (the
  gradient tends to MeanFlow's as alpha -> 0) holds only for p = 0 (plain MSE).
  Kept searchable.
- ``none``: 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DISCRETE_WEIGHTS = ("alpha", "inv_alpha", "none")
LOSS_REDUCTIONS = ("mean", "sum")


def adaptive_weight(err: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    """w = 1 / (sg(err) + eps)^p, err: (N,) -> (N,)."""
    return 1.0 / (err.detach() + eps) ** p


def discrete_row_weight(dt: torch.Tensor, alpha: torch.Tensor, kind: str) -> torch.Tensor:
    """Weight per row: rows with dt > 0 get alpha, 1/alpha or 1; other rows 1.

    dt: (N,); alpha: a 0-d tensor (one alpha per step) or (N,) (one per row) -> (N,).
    """
    if kind == "none":
        return torch.ones_like(dt)
    factor = 1.0 / alpha.clamp_min(1e-8) if kind == "inv_alpha" else alpha
    return torch.where(dt > 0, factor * torch.ones_like(dt), torch.ones_like(dt))


@dataclass(frozen=True)
class RowLoss:
    """A row's error and its adaptive weight under a trial's settings, for targets that build their own loss.

    ``error`` is exactly what the training loss computes for (u, target), so a
    target returning ``weighted(u, target)`` trains as the default path does.
    """

    reduction: str  # loss_reduction: mean or sum over pixels
    p: float  # adaptive_p
    eps: float  # adaptive_eps

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N,): the mean over pixels, times the pixel count for ``sum``; fp32 at least."""
        mean = x.to(torch.promote_types(x.dtype, torch.float32)).flatten(1).mean(1)
        return mean * x[0].numel() if self.reduction == "sum" else mean

    def error(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        acc = torch.promote_types(pred.dtype, torch.float32)
        return self.reduce((pred.to(acc) - target.to(acc)).pow(2))

    def weight(self, err: torch.Tensor) -> torch.Tensor:
        return adaptive_weight(err, self.p, self.eps)

    def weighted(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """sg(w(e)) * e per row, e = ``error(pred, target)``: the loss the default path gives a row."""
        err = self.error(pred, target)
        return self.weight(err) * err
