"""The trial configuration: a frozen dataclass built once from a flat dict.

Flat keys are what Ray and Optuna hand over. Two kinds of key expand:
- ``objective``: a name from ``OBJECTIVES`` whose target and schedules become
  defaults (explicit keys still override them);
- ``ratio_fm.<param>`` / ``alpha.<param>`` (and ``.schedule``): the schedules'
  names and parameters, one column each in a results table.
``preset`` picks defaults for everything else (``PRESETS``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from trainer.model import MODEL_SIZES
from trainer.objectives import DISCRETE_WEIGHTS, OBJECTIVES, TARGETS, TIME_SAMPLERS, ScheduleSpec, make_traj_params
from trainer.registry import Registry

PRESETS = Registry("preset")
DATASETS = ("cifar10", "synthetic")

# The research protocol: 10,000 steps at batch 128 of the ~40M SmallDiT on
# CIFAR-10, scored by clean-fid on 50k samples of a 10-step Euler sampler.
PRESETS.register("seed")(
    dict(
        model="seed",
        dataset="cifar10",
        steps=10_000,
        batch_size=128,
        eval_every=2_000,
        eval_samples=5_000,
        fid_samples=50_000,
        fid_mode="clean-fid",
    )
)
# A CPU smoke run of about a minute: tiny model, synthetic images, and a
# stand-in FID (small seeded feature net) that is labelled as such.
PRESETS.register("smoke")(
    dict(
        model="tiny",
        dataset="synthetic",
        steps=200,
        batch_size=16,
        eval_every=100,
        eval_samples=256,
        fid_samples=512,
        fid_mode="standin",
        lr=1e-3,
        ema_decay=0.99,
        compile=False,
    )
)


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "smoke"  # name from PRESETS; fills the fields below that a flat dict leaves out
    # --- objective (see trainer.objectives) ---
    target: str = "meanflow"  # name from TARGETS
    ratio_fm: ScheduleSpec = ScheduleSpec("constant", {"value": 0.75})  # share of rows with t_next = t
    alpha: ScheduleSpec = ScheduleSpec("constant", {"value": 0.0})  # discrete step as a share of t - t_next
    time_sampler: str = "logit_normal"  # name from TIME_SAMPLERS
    time_mean: float = -0.4  # logit-normal location (MeanFlow's ImageNet setting)
    time_std: float = 1.0  # logit-normal scale
    time_mean_r: float | None = None  # the second draw's location (None: time_mean), shapes t_next separately
    time_std_r: float | None = None  # the second draw's scale (None: time_std)
    interval_start: float = 1.0  # interval curriculum: intervals scaled by this at step 0, by 1 at the end; 1 = off
    adaptive_p: float = 1.0  # adaptive loss weight power (MeanFlow p = 1; 0 is plain MSE)
    adaptive_eps: float = 1e-3  # adaptive loss weight eps (MeanFlow c = 1e-3)
    discrete_weight: str = "inv_alpha"  # weight of rows with dt > 0: see objectives/loss.py
    target_clamp: float = 0.0  # > 0 clamps every target value to [-c, c] (AlphaFlow: 4); 0 = off
    teacher_decay: float = 0.99  # EMA rate of the teacher network of teacher targets (ema_teacher); 0 = online net
    # --- model and data ---
    model: str = "tiny"  # name from MODEL_SIZES
    dataset: str = "synthetic"  # cifar10 | synthetic
    data_dir: str = "data"  # where CIFAR-10 lives (or is downloaded to)
    # --- optimisation ---
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-4  # AdamW; MeanFlow's DiT setting
    weight_decay: float = 0.0
    ema_decay: float = 0.999  # horizon ~1,000 steps: a 10k-step run has no use for 0.9999
    grad_clip: float = 0.0  # 0 disables; clipping costs a host-side norm only if enabled
    seed: int = 0
    # --- evaluation ---
    eval_every: int = 100  # intermediate FID (and report()) every this many steps; 0 disables
    eval_samples: int = 256  # samples for the intermediate FID
    fid_samples: int = 512  # samples for the final FID (50k at the protocol)
    fid_mode: str = "standin"  # clean-fid (protocol) | standin (offline smoke scoring)
    fid_cache: str = ""  # folder with Inception weights and reference stats ('' = env or default)
    sample_steps: int = 10  # Euler steps of the sampler
    # --- execution ---
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    compile: bool = True  # torch.compile the training step and the sampler (GPU)
    amp: bool = True  # bf16 autocast on GPU (never on CPU)
    out_dir: str = ""  # where result.json and samples.png go; '' writes nothing
    checkpoint_every: int = 0  # steps between checkpoints; 0 disables
    checkpoint_dir: str = ""  # where the checkpoint goes ('' = out_dir)

    def __post_init__(self):
        validate(self)

    def to_flat(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ScheduleSpec):
                out[f"{f.name}.schedule"] = value.name
                out.update({f"{f.name}.{k}": v for k, v in value.params.items()})
            else:
                out[f.name] = value
        return out

    def config_hash(self) -> str:
        """Hash of everything that changes the result (not where it is written)."""
        flat = {
            k: v
            for k, v in self.to_flat().items()
            if k not in ("out_dir", "checkpoint_dir", "data_dir", "fid_cache", "device")
        }
        return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]

    @classmethod
    def from_flat(cls, flat: dict) -> "TrainConfig":
        return from_flat(flat)


def _field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def from_flat(flat: dict) -> TrainConfig:
    """Builds a TrainConfig from a flat dict; unknown keys raise ValueError listing the known ones."""
    flat = dict(flat)
    preset = flat.get("preset", "smoke")
    merged: dict = {"preset": preset, **PRESETS[preset]}
    if "objective" in flat:
        objective = OBJECTIVES[flat.pop("objective")].flat()
        for prefix in ("ratio_fm", "alpha"):  # a schedule family swapped by the caller drops the objective's params
            key = f"{prefix}.schedule"
            if key in flat and flat[key] != objective[key]:
                objective = {k: v for k, v in objective.items() if not k.startswith(prefix + ".")}
        merged.update(objective)
    merged.update(flat)
    names = _field_names()
    kwargs, specs = {}, {"ratio_fm": {}, "alpha": {}}
    for key, value in merged.items():
        prefix, dot, param = key.partition(".")
        if dot and prefix in specs:
            specs[prefix][param] = value
        elif key in names and key not in specs:
            kwargs[key] = value
        else:
            raise ValueError(
                f"unknown config key {key!r}; known keys: {', '.join(names + ['objective'])} "
                f"and ratio_fm.<param>, alpha.<param>"
            )
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for prefix, params in specs.items():
        if params:
            name = params.pop("schedule", defaults[prefix].name)
            kwargs[prefix] = ScheduleSpec(name, params)
    return TrainConfig(**kwargs)


def validate(cfg: TrainConfig) -> None:
    """One clear sentence per bad value (ValueError); run when the config is built."""
    PRESETS[cfg.preset]
    TARGETS[cfg.target]
    TIME_SAMPLERS[cfg.time_sampler]
    if cfg.model not in MODEL_SIZES:
        raise ValueError(f"unknown model size {cfg.model!r}; choose one of: {', '.join(MODEL_SIZES)}")
    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of: {', '.join(DATASETS)}")
    if cfg.discrete_weight not in DISCRETE_WEIGHTS:
        raise ValueError(
            f"unknown discrete_weight {cfg.discrete_weight!r}; choose one of: {', '.join(DISCRETE_WEIGHTS)}"
        )
    if cfg.fid_mode not in ("clean-fid", "standin"):
        raise ValueError(f"unknown fid_mode {cfg.fid_mode!r}; choose clean-fid or standin")
    for name in ("steps", "batch_size", "sample_steps", "fid_samples"):
        if int(getattr(cfg, name)) <= 0:
            raise ValueError(f"{name}={getattr(cfg, name)} must be a positive integer")
    for name in ("eval_every", "eval_samples", "checkpoint_every"):
        if int(getattr(cfg, name)) < 0:
            raise ValueError(f"{name}={getattr(cfg, name)} must be >= 0")
    if not cfg.lr > 0:
        raise ValueError(f"lr={cfg.lr} must be > 0")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay={cfg.ema_decay} must be in [0, 1)")
    if not cfg.time_std > 0 or (cfg.time_std_r is not None and not cfg.time_std_r > 0):
        raise ValueError(f"time_std={cfg.time_std} and time_std_r={cfg.time_std_r} must be > 0")
    if not 0.0 < cfg.interval_start <= 1.0:
        raise ValueError(f"interval_start={cfg.interval_start} must be in (0, 1]")
    if cfg.target_clamp < 0:
        raise ValueError(f"target_clamp={cfg.target_clamp} must be >= 0 (0 disables it)")
    if not 0.0 <= cfg.teacher_decay < 1.0:
        raise ValueError(f"teacher_decay={cfg.teacher_decay} must be in [0, 1)")
    if not cfg.adaptive_eps > 0 or cfg.adaptive_p < 0:
        raise ValueError(f"adaptive weighting needs eps > 0 and p >= 0, got eps={cfg.adaptive_eps}, p={cfg.adaptive_p}")
    make_traj_params(cfg.ratio_fm, cfg.alpha)  # checks names, parameters and the [0, 1] range
