"""The trial configuration: a frozen dataclass, built once from a flat dict (``from_flat``) or directly.

Where a value comes from, lowest precedence first:
1. the field's default in ``TrainConfig``, or, for the keys a preset sets (the
   fields whose default is ``FROM_PRESET``), the preset's value: ``preset``
   is applied at construction, so ``TrainConfig(preset="seed")`` is the
   protocol, not a tiny model with a "seed" label;
2. ``objective``: a name from ``OBJECTIVES`` whose target, schedules and
   settings become the values (``from_flat`` only);
3. explicit keys.
Schedule keys are ``ratio_fm.<param>`` / ``alpha.<param>`` / ``interval_weight.<param>`` (and
``.schedule``), one column each in a results table. When explicit keys name
another schedule family than the objective's (``alpha.schedule=linear`` over
AlphaFlow's sigmoid), the objective's parameters of that schedule are dropped:
they belong to the other family.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from trainer.objectives import (
    OBJECTIVES,
    TARGETS,
    ScheduleSpec,
    TimeSpec,
)
from trainer.objectives.time_sampling import interval_lambda
from trainer.objectives.tangent import FD_EPS, Tangent
from trainer.presets import PRESETS
from trainer.validation import ALPHA_ROWS, DATASETS, SEED_MAX, parse_nfe, validate  # noqa: F401 (re-exported)


class _FromPreset:
    """The default of a field that every preset sets: filled from the config's preset at construction."""

    def __repr__(self) -> str:
        return "FROM_PRESET"


FROM_PRESET = _FromPreset()

# Which defaults produced a result. 1: up to 2026-11-27 (time embedding x1000,
# discrete rows weighted 1/alpha, flow-matching rows at the larger of two draws,
# Adam beta2 0.999, bf16 on GPU, splitmeanflow on the conditional path, shortcut
# without teacher or grid). 2: the released codes' choices (see the README's
# provenance table). Every result row carries it.
PROTOCOL_VERSION = 2

# New keys at the value that reproduces protocol 1 are left out of the config
# hash, so a config whose behaviour did not change keeps its hash.
HASH_NEUTRAL = {
    "time_scale": 1000.0,
    "fm_time": "max",
    "dyadic_levels": 7,
    "alpha_rows": "step",
    "loss_reduction": "mean",
    "adam_b1": 0.9,
    "adam_b2": 0.999,
    "tangent_beta": 0.0,
    "tangent": "jvp",
    "tangent_eps": FD_EPS,
    "tim_weight": "sqrt",
    "tim_time_map": "tangent",
    "tim_dir": 1.0,
    "dmf_pairs": "batch",
    "imf_velocity_rows": "all",
    "ratio_r0": 0.0,
    "interval_weight.schedule": "constant",
    "interval_weight.value": 0.0,
}
# Targets whose math changed since protocol 1 (and the clamp that now spares
# flow-matching and JVP rows): their hashes carry the revision as a marker.
# imf 3: the released iMF, where 'imf' was the JVP along the model's own velocity alone.
TARGET_REVISIONS = {"splitmeanflow": 2, "shortcut": 2, "imf": 3}
# Keys that say where, how fast or with which seed a config runs, or what else is
# measured: not part of what a config *is*.
OFF = ScheduleSpec("constant", {"value": 0.0})  # interval_weight's default: no interval weight
SCHEDULED = ("ratio_fm", "alpha", "interval_weight")  # the fields that are schedules of training progress
NOT_HASHED = (
    "out_dir",
    "checkpoint_dir",
    "checkpoint_every",
    "data_dir",
    "fid_cache",
    "compile_cache",
    "device",
    "seed",
    "fid_nfe",
)


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "smoke"  # name from PRESETS; fills the fields below that a flat dict leaves out
    # --- objective (see trainer.objectives; the README's provenance table says where each default comes from) ---
    target: str = "meanflow"  # name from TARGETS
    ratio_fm: ScheduleSpec = ScheduleSpec("constant", {"value": 0.75})  # share of rows with t_next = t
    alpha: ScheduleSpec = ScheduleSpec("constant", {"value": 0.0})  # discrete step as a share of t - t_next
    alpha_rows: str = "step"  # step: every row gets the step's alpha; uniform: each row alpha * U(0, 1) (SplitMeanFlow)
    time_sampler: str = "logit_normal"  # name from TIME_SAMPLERS
    time_mean: float = -0.4  # logit-normal location (MeanFlow's ImageNet setting)
    time_std: float = 1.0  # logit-normal scale
    time_mean_r: float | None = None  # the second draw's location (None: time_mean), shapes t_next separately
    time_std_r: float | None = None  # the second draw's scale (None: time_std)
    fm_time: str = "single"  # flow-matching rows' t: one draw (AlphaFlow) or the larger of two (MeanFlow)
    dyadic_levels: int = 7  # the dyadic sampler's step sizes 2^0 .. 2^-(L-1) (Shortcut: 128 steps -> 7)
    interval_start: float = 1.0  # interval curriculum: intervals scaled by this at step 0, by 1 at the end; 1 = off
    adaptive_p: float = 1.0  # adaptive loss weight power (MeanFlow p = 1; 0 is plain MSE)
    adaptive_eps: float = 1e-3  # adaptive loss weight eps
    loss_reduction: str = "mean"  # a row's error: mean (AlphaFlow) or sum (MeanFlow) over pixels
    discrete_weight: str = "alpha"  # weight of rows with dt > 0: see objectives/loss.py
    target_clamp: float = 0.0  # > 0 clips computed targets to [-c, c] (AlphaFlow, Shortcut: 4); 0 = off
    teacher_decay: float = 0.99  # EMA rate of the teacher of teacher targets (ema_teacher, shortcut); 0 = online net
    tangent_beta: float = 0.0  # vr_meanflow: the model velocity's share of the JVP tangent (0 = MeanFlow's v)
    tangent: str = "jvp"  # how JVP targets take du/dt: jvp (forward-mode AD) or fd (TiM's central difference)
    tangent_eps: float = FD_EPS  # fd's half step (TiM's dde epsilon 0.005)
    tim_weight: str = "sqrt"  # tim: its time weight of g(t) - g(r) (TiM's configs: sqrt)
    tim_time_map: str = "tangent"  # tim: the warp g of that weight's times (TiM's configs: tan)
    tim_dir: float = 1.0  # tim: the weight of its directional (cosine) term (TiM's use_dir_loss: 1)
    dmf_pairs: str = "batch"  # dmf: the release's loss over every pair of a term's rows (batch), or per row
    imf_velocity_rows: str = "all"  # imf: the velocity loss on all rows (the release's head) or on t_next < t only
    ratio_r0: float = 0.0  # share of the rows with t_next < t that get t_next = 0 (TiM's consistency rows)
    interval_weight: ScheduleSpec = OFF  # the interval weight's strength s over the run (0: off; loss.py)
    # --- model and data ---
    model: str = FROM_PRESET  # name from MODEL_SIZES
    time_scale: float = 1.0  # t and t - t_next are multiplied by this before the sinusoids (released DiTs: 1)
    dataset: str = FROM_PRESET  # cifar10 | synthetic
    data_dir: str = "data"  # where CIFAR-10 lives (or is downloaded to)
    # --- optimisation ---
    steps: int = FROM_PRESET
    batch_size: int = FROM_PRESET
    lr: float = FROM_PRESET  # Adam; MeanFlow's and AlphaFlow's DiT setting
    adam_b1: float = 0.9
    adam_b2: float = 0.95  # MeanFlow's DiT (JAX) and AlphaFlow's configs; torch's default is 0.999
    weight_decay: float = 0.0
    ema_decay: float = FROM_PRESET  # horizon ~1,000 steps: a 10k-step run has no use for 0.9999
    grad_clip: float = 0.0  # 0 disables; clipping costs a host-side norm only if enabled
    seed: int = 0
    # --- evaluation ---
    eval_every: int = FROM_PRESET  # intermediate FID (and report()) every this many steps; 0 disables
    eval_samples: int = FROM_PRESET  # samples for the intermediate FID
    fid_samples: int = FROM_PRESET  # samples for the final FID (50k at the protocol)
    fid_mode: str = FROM_PRESET  # clean-fid (protocol) | standin (offline smoke scoring)
    fid_cache: str = ""  # folder with Inception weights and reference stats ('' = env or default)
    sample_steps: int = 10  # Euler steps of the sampler (the protocol's FID)
    fid_nfe: tuple = FROM_PRESET  # more step counts to score the same EMA network at, e.g. (1, 2): final_fid_nfe1 ...
    # --- execution ---
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    compile: bool = FROM_PRESET  # torch.compile the training step and the sampler (GPU)
    compile_cache: str = ""  # root of the compile caches kept across trials ('' = env or default; compile_cache.py)
    amp: bool = False  # bf16 autocast on GPU (never on CPU); off as in the MeanFlow port until bench --precision-check
    out_dir: str = ""  # where result.json and samples.png go; '' writes nothing
    checkpoint_every: int = 0  # steps between checkpoints; 0 disables
    checkpoint_dir: str = ""  # where the checkpoint goes ('' = out_dir)

    def __post_init__(self):
        preset = PRESETS[self.preset]
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is FROM_PRESET:
                object.__setattr__(self, f.name, preset[f.name])
        for f in dataclasses.fields(self):  # 1 and 1.0 are one value of a float field: one hash
            value = getattr(self, f.name)
            if f.type.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
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
        """Hash of everything that changes the trained network (not where it is written, not the seed).

        The seed is left out so one config run on several seeds groups by hash
        (the seed is a column of its own); so is ``fid_nfe``, which adds scores
        of the same network without changing it.

        Keys at their ``HASH_NEUTRAL`` value are left out, and behaviour that
        changed in protocol 2 without a key of its own adds a marker: a config
        that trains exactly as it did under protocol 1 keeps its hash.
        """
        flat = {
            k: v
            for k, v in self.to_flat().items()
            if k not in NOT_HASHED and not (k in HASH_NEUTRAL and v == HASH_NEUTRAL[k])
        }
        if self.target in TARGET_REVISIONS:
            flat["target_revision"] = TARGET_REVISIONS[self.target]
        if self.target_clamp > 0:
            flat["clamp_rows"] = "computed"  # protocol 1 clamped every target, v included
        return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def loss_spec(self, amp: bool):
        """The loss settings, by keyword (``amp``: whether bf16 autocast is on for this device)."""
        from trainer.loss import LossSpec

        return LossSpec(
            target=self.target,
            adaptive_p=self.adaptive_p,
            adaptive_eps=self.adaptive_eps,
            discrete_weight=self.discrete_weight,
            target_clamp=self.target_clamp,
            loss_reduction=self.loss_reduction,
            amp=amp,
            knobs=tuple((key, getattr(self, key)) for key in TARGETS[self.target].knobs),
            tangent=Tangent(self.tangent, self.tangent_eps),
            interval_lambda=0.0 if self.interval_weight == OFF else interval_lambda(self.time_spec()),
        )

    @property
    def takes_jvp(self) -> bool:
        """Whether training takes a forward-mode JVP (then the online network runs math attention)."""
        return TARGETS[self.target].jvp != "no" and self.tangent == "jvp"

    def time_spec(self) -> TimeSpec:
        return TimeSpec(
            sampler=self.time_sampler,
            mean=self.time_mean,
            std=self.time_std,
            mean_r=self.time_mean_r,
            std_r=self.time_std_r,
            fm_time=self.fm_time,
            dyadic_levels=self.dyadic_levels,
            ratio_r0=self.ratio_r0,
        )


def _field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def from_flat(flat: dict) -> TrainConfig:
    """Builds a TrainConfig from a flat dict; unknown keys raise ValueError listing the known ones."""
    flat = dict(flat)
    merged: dict = {"preset": flat.get("preset", "smoke")}  # the preset's values are filled at construction
    if "objective" in flat:
        objective = OBJECTIVES[flat.pop("objective")].flat()
        for prefix in SCHEDULED:  # a schedule family swapped by the caller drops the objective's params
            key = f"{prefix}.schedule"
            if key in flat and flat[key] != objective.get(key, "constant"):
                objective = {k: v for k, v in objective.items() if not k.startswith(prefix + ".")}
        merged.update(objective)
    merged.update(flat)
    names = _field_names()
    kwargs, specs = {}, {prefix: {} for prefix in SCHEDULED}
    for key, value in merged.items():
        prefix, dot, param = key.partition(".")
        if dot and prefix in specs:
            specs[prefix][param] = value
        elif key in names and key not in specs:
            kwargs[key] = value
        else:
            raise ValueError(
                f"unknown config key {key!r}; known keys: {', '.join(names + ['objective'])} "
                f"and ratio_fm.<param>, alpha.<param>, interval_weight.<param>"
            )
    if "fid_nfe" in kwargs:
        kwargs["fid_nfe"] = parse_nfe(kwargs["fid_nfe"])
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for prefix, params in specs.items():
        if params:
            name = params.pop("schedule", defaults[prefix].name)
            kwargs[prefix] = ScheduleSpec(name, params)
    return TrainConfig(**kwargs)
