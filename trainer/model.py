"""SmallDiT: a DiT with adaLN-Zero conditioning on two times, for mean-velocity models.

The network is called ``net(x, t, t_next)`` and predicts the mean velocity over
[t_next, t] (see ``trainer.objectives`` for the convention). It embeds ``t`` and
the interval length ``t - t_next`` with two sinusoidal MLPs and adds them, as
MeanFlow does for its DiT.

Attention has two implementations with the same weights:
- ``math`` (explicit softmax(QK^T)V): has a forward-mode derivative, so it is
  the one used under ``torch.func.jvp`` (fused SDPA kernels raise there);
- ``fused`` (``F.scaled_dot_product_attention``): faster, used wherever no JVP
  is taken (sampling, flow-matching-only steps).
Switch with ``net.set_attention("math" | "fused")``.

Layer norms are written out (:class:`Norm`): ``F.layer_norm``'s forward-mode
derivative is not itself differentiated correctly by reverse mode (PyTorch
2.14; gradients through a JVP of this network came out 1-3% off in float64),
and the objectives that train through du/dt (``lsd``, ``modular``) need that
gradient exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

ATTENTION_KINDS = ("math", "fused")


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 512  # width of every token
    depth: int = 8  # number of DiT blocks
    heads: int = 8  # attention heads (hidden must divide evenly)
    patch: int = 2  # 32x32 image -> 16x16 = 256 tokens
    image_size: int = 32
    channels: int = 3
    mlp_ratio: float = 4.0
    # t and t - t_next are multiplied by this before the sinusoids. 1 follows the
    # released MeanFlow DiT (JAX, models_dit.py: `t * freqs`) and AlphaFlow's DiT
    # (dit.py: `t[:, None] * freqs[None]`); DiT's diffusion code uses 1000 (its t
    # counts steps). With 1000 the JVP's time term dominates every MeanFlow target.
    time_scale: float = 1.0

    def __post_init__(self):
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")
        if self.image_size % self.patch:
            raise ValueError(f"image_size={self.image_size} is not divisible by patch={self.patch}")


#################################################################################
#                          Embedding layers for times                           #
#################################################################################


def timestep_embedding(t: torch.Tensor, dim: int, scale: float = 1.0, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of ``scale * t`` for t in [0, 1]: [cos(scale t f_k), sin(scale t f_k)]. (N,) -> (N, dim)."""
    half = dim // 2
    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32  # never bf16: scale * t needs the mantissa
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=dtype) / half)
    args = t.to(dtype)[:, None] * scale * freqs[None]  # (N, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (N, dim)


class TimeEmbed(nn.Module):
    def __init__(self, hidden: int, scale: float = 1.0, freq_dim: int = 256):
        super().__init__()
        self.freq_dim, self.scale = freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim, self.scale))  # (N, D)


class Norm(nn.Module):
    """LayerNorm without affine parameters, as explicit mean and variance (see the module's docstring)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.promote_types(x.dtype, torch.float32))  # fp32 under bf16 autocast, as F.layer_norm there
        centred = x - x.mean(-1, keepdim=True)
        return centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + self.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]  # (N, T, D)


#################################################################################
#                                 Core DiT block                                #
#################################################################################


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.kind = "math"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
        if self.kind == "fused":
            o = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, Dh)
        else:  # differentiable in forward mode; torch.compile fuses it anyway
            w = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, H, T, T); scaling q is cheaper
            o = w.softmax(dim=-1) @ v  # (B, H, T, Dh)
        return self.proj(o.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class DiTBlock(nn.Module):
    def __init__(self, hidden: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = Norm()
        self.attn = Attention(hidden, heads)
        self.norm2 = Norm()
        mlp_hidden = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_hidden), nn.GELU(approximate="tanh"), nn.Linear(mlp_hidden, hidden)
        )
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s1, g1, a1, s2, g2, a2 = self.ada(c).chunk(6, dim=-1)  # 6 x (N, D)
        x = x + a1[:, None] * self.attn(modulate(self.norm1(x), s1, g1))  # (N, T, D)
        return x + a2[:, None] * self.mlp(modulate(self.norm2(x), s2, g2))  # (N, T, D)


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, patch: int, channels: int):
        super().__init__()
        self.norm = Norm()
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.out = nn.Linear(hidden, patch * patch * channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)  # 2 x (N, D)
        return self.out(modulate(self.norm(x), shift, scale))  # (N, T, p*p*C)


#################################################################################
#                                   SmallDiT                                    #
#################################################################################


class SmallDiT(nn.Module):
    def __init__(self, config: ModelConfig | None = None, **overrides):
        super().__init__()
        cfg = config or ModelConfig(**overrides)
        self.config = cfg
        self.grid = cfg.image_size // cfg.patch
        self.embed = nn.Conv2d(cfg.channels, cfg.hidden, cfg.patch, cfg.patch)
        self.register_buffer("pos", sincos_pos_embed(cfg.hidden, self.grid)[None])  # (1, T, D), fixed
        self.t_embed = TimeEmbed(cfg.hidden, cfg.time_scale)
        self.dt_embed = TimeEmbed(cfg.hidden, cfg.time_scale)  # embeds the interval t - t_next
        self.blocks = nn.ModuleList(DiTBlock(cfg.hidden, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final = FinalLayer(cfg.hidden, cfg.patch, cfg.channels)
        self.initialize_weights()

    def initialize_weights(self):
        def _basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

        self.apply(_basic)
        w = self.embed.weight.data  # patch embedding initialised like a Linear layer (DiT)
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.embed.bias)
        for emb in (self.t_embed, self.dt_embed):
            for layer in (emb.mlp[0], emb.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: every residual branch and the output start at zero, so the
        # untrained network is the identity on tokens and predicts 0 velocity.
        for blk in self.blocks:
            nn.init.zeros_(blk.ada[-1].weight)
            nn.init.zeros_(blk.ada[-1].bias)
        nn.init.zeros_(self.final.ada[-1].weight)
        nn.init.zeros_(self.final.ada[-1].bias)
        nn.init.zeros_(self.final.out.weight)
        nn.init.zeros_(self.final.out.bias)

    def set_attention(self, kind: str) -> "SmallDiT":
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"attention kind {kind!r} is not one of {ATTENTION_KINDS}")
        for blk in self.blocks:
            blk.attn.kind = kind
        return self

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def unpatchify(self, h: torch.Tensor) -> torch.Tensor:
        cfg, g = self.config, self.grid
        p, c = cfg.patch, cfg.channels
        h = h.reshape(h.shape[0], g, g, p, p, c)  # (N, g, g, p, p, C)
        h = h.permute(0, 5, 1, 3, 2, 4)  # (N, C, g, p, g, p)
        return h.reshape(h.shape[0], c, g * p, g * p)  # (N, C, H, W)

    def forward(self, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """Mean velocity over [t_next, t]. x: (N, C, H, W), t, t_next: (N,) -> (N, C, H, W)."""
        h = self.embed(x).flatten(2).transpose(1, 2) + self.pos  # (N, T, D)
        c = self.t_embed(t) + self.dt_embed(t - t_next)  # (N, D)
        for blk in self.blocks:
            h = blk(h, c)  # (N, T, D)
        h = self.final(h, c)  # (N, T, p*p*C)
        return self.unpatchify(h)  # (N, C, H, W)


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (as in DiT/MAE). -> (grid*grid, dim)."""
    coords = torch.arange(grid, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)

    def one(pos):
        out = pos.reshape(-1, 1) * omega[None]  # (grid*grid, dim/4)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)  # (grid*grid, dim/2)

    return torch.cat([one(yy), one(xx)], dim=1).float()  # (grid*grid, dim)


MODEL_SIZES = {
    "seed": ModelConfig(),  # the research protocol: ~39-40M parameters
    "small": ModelConfig(hidden=256, depth=4, heads=4),
    "tiny": ModelConfig(hidden=64, depth=2, heads=4, patch=4),  # 64 tokens: CPU tests and smoke runs
}
