"""Loss weighting.

Adaptive weighting (MeanFlow, Geng et al. 2025, Sec. 4.3): with the per-row
squared error e = mean((u - target)^2), the row's loss is sg(w) * e with
w = 1 / (sg(e) + eps)^p. p = 1 makes the loss ~ e / (e + eps): a robust,
scale-free objective; p = 0 is plain MSE.

Discrete rows (dt > 0) get an extra weight. We follow the AlphaFlow *paper*,
dividing by alpha ("inv_alpha"), because it is the choice under which the
objective has the right limit: the discrete target is
u_sg + alpha * (meanflow_target - u_sg) + O(alpha^2), so the gradient of
|u - target|^2 / alpha tends to the gradient of the MeanFlow loss as
alpha -> 0, while multiplying by alpha (the released code, "alpha") makes
it vanish like alpha^2. Both, and "none", can be selected and searched.
"""

from __future__ import annotations

import torch

DISCRETE_WEIGHTS = ("inv_alpha", "alpha", "none")


def adaptive_weight(err: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    """w = 1 / (sg(err) + eps)^p, err: (N,) -> (N,)."""
    return 1.0 / (err.detach() + eps) ** p


def discrete_row_weight(dt: torch.Tensor, alpha: torch.Tensor, kind: str) -> torch.Tensor:
    """Weight per row: rows with dt > 0 get 1/alpha, alpha or 1; other rows 1. dt: (N,) -> (N,)."""
    if kind == "none":
        return torch.ones_like(dt)
    factor = 1.0 / alpha.clamp_min(1e-8) if kind == "inv_alpha" else alpha
    return torch.where(dt > 0, factor * torch.ones_like(dt), torch.ones_like(dt))
