"""Named objectives: a target, two schedules and the settings their source uses.

``--objective NAME`` (and ``{"objective": NAME}`` in a flat config) expands to
these keys; explicit keys still override them. Every setting an objective sets
says where it comes from (``sources``); the keys it leaves alone take the
config's defaults, whose sources are in ``trainer/provenance.py``.

The protocol's two functions come from AlphaFlow's released code
(``sample_traj_params``, ``compute_mean_velocity_target``), so ``meanflow`` and
``alphaflow`` are that code's two experiments (``experiments-alphaflow.yaml``),
sharing its loss. ``meanflow_cifar`` is the MeanFlow authors' own CIFAR-10
recipe (py-meanflow). The FIDs are the seed task's reference table, whose
exact settings are not published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.objectives.schedules import ScheduleSpec
from trainer.registry import Registry

OBJECTIVES = Registry("objective")

AF_YAML = "AlphaFlow infra/experiments/experiments-alphaflow.yaml"
SIGMOID = ScheduleSpec("sigmoid", {"start": 1.0, "end": 0.0, "gamma": 25.0, "eta": 0.005})
SIGMOID_SOURCE = (
    f"{AF_YAML} alphaflow-sigmoid-latentspace-B-2: sigmoid 1 -> 0, change_init_steps 0 to change_end_steps = "
    "max_steps (k_init 0, k_end 1), gamma 25, clamp_value 0.005 (eta)"
)


@dataclass(frozen=True)
class Objective:
    target: str
    ratio_fm: ScheduleSpec
    alpha: ScheduleSpec
    reference_fid: float | None = None  # the protocol's known FID, if any
    description: str = ""
    settings: dict = field(default_factory=dict)  # other flat config keys this objective sets
    sources: dict = field(default_factory=dict)  # key (or 'ratio_fm', 'alpha') -> where its value comes from
    baseline: bool = False  # a known baseline: run first in every space it lies in

    def flat(self) -> dict:
        """The objective as the flat config keys the trainer accepts."""
        out = {"target": self.target, **self.settings}
        for prefix, spec in (("ratio_fm", self.ratio_fm), ("alpha", self.alpha)):
            out[f"{prefix}.schedule"] = spec.name
            out.update({f"{prefix}.{k}": v for k, v in spec.params.items()})
        return out


def _register(name: str, obj: Objective) -> None:
    OBJECTIVES.register(name)(obj)


NO_ALPHA = ScheduleSpec("constant", {"value": 0.0})

_register(
    "pureflow",
    Objective(
        "pureflow",
        ScheduleSpec("constant", {"value": 1.0}),
        NO_ALPHA,
        86.21,
        "plain flow matching: every row has t_next = t",
        sources={"ratio_fm": f"{AF_YAML} alphaflow-flowmatching-latentspace-B-2: ratio_fm 1, alpha 0"},
        baseline=True,
    ),
)
_register(
    "meanflow",
    Objective(
        "meanflow",
        ScheduleSpec("constant", {"value": 0.75}),
        NO_ALPHA,
        41.81,
        "MeanFlow: JVP target on 25% of rows (AlphaFlow's code, alpha 0)",
        sources={
            "ratio_fm": f"{AF_YAML} alphaflow-meanflow-latentspace-B-2: ratio_fm 0.75; MeanFlow Table 1a (25% r != t)",
            "alpha": f"{AF_YAML} alphaflow-meanflow-latentspace-B-2: alpha constant 0",
        },
        baseline=True,
    ),
)
_register(
    "alphaflow",
    Objective(
        "alphaflow",
        ScheduleSpec("constant", {"value": 0.5}),
        SIGMOID,
        48.62,
        "AlphaFlow: discrete target, alpha curriculum 1 -> 0",
        settings={"target_clamp": 4.0},
        sources={
            "ratio_fm": f"{AF_YAML} alphaflow-sigmoid-latentspace-B-2: ratio_fm 0.5",
            "alpha": SIGMOID_SOURCE,
            "target_clamp": "AlphaFlow loss.py clips discrete targets (only) to clamp_utgt: 4.0 in its base loss "
            "config configs/loss/alphaflow.yaml (read in derived copies) and in 3 of its experiment configs",
        },
        baseline=True,
    ),
)
_register(
    "meanflow_cifar",
    Objective(
        "meanflow",
        ScheduleSpec("constant", {"value": 0.25}),
        NO_ALPHA,
        None,
        "MeanFlow's released CIFAR-10 recipe (py-meanflow): wide logit-normal, p 0.75, 75% r != t",
        settings={
            "time_mean": -2.0,
            "time_std": 2.0,
            "time_mean_r": -2.0,
            "time_std_r": 2.0,
            "fm_time": "max",
            "adaptive_p": 0.75,
            "adaptive_eps": 1e-3,
            "loss_reduction": "sum",
        },
        sources={
            "ratio_fm": "py-meanflow scripts/cifar10_v0.sh --ratio 0.75 = P(r != t), so ratio_fm 0.25 "
            "(a count per batch here, a coin per row there)",
            "time_mean": "py-meanflow scripts/cifar10_v0.sh --P_mean_t -2.0 (and --P_mean_r -2.0)",
            "time_std": "py-meanflow scripts/cifar10_v0.sh --P_std_t 2.0 (and --P_std_r 2.0)",
            "time_mean_r": "py-meanflow scripts/cifar10_v0.sh --P_mean_r -2.0",
            "time_std_r": "py-meanflow scripts/cifar10_v0.sh --P_std_r 2.0",
            "fm_time": "py-meanflow time_sampler.py v0: t, r = max, min, then r = t on flow-matching rows",
            "adaptive_p": "py-meanflow scripts/cifar10_v0.sh --norm_p 0.75",
            "adaptive_eps": "py-meanflow train_arg_parser.py --norm_eps 1e-3",
            "loss_reduction": "py-meanflow meanflow.py: loss.sum(dim=(1, 2, 3))",
        },
        baseline=True,
    ),
)

# The objectives with a known FID at the protocol (the reference table).
KNOWN = [name for name, obj in OBJECTIVES.items() if obj.reference_fid is not None]
# The known baselines: run first in every space they lie in.
BASELINES = [name for name, obj in OBJECTIVES.items() if obj.baseline]

# Variants (trainer/objectives/variants.py) with the settings their papers or codes use; no known FID yet.
_register(
    "splitmeanflow",
    Objective(
        "splitmeanflow",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("constant", {"value": 1.0}),
        None,
        "SplitMeanFlow: split at lambda ~ U(0, 1) per row, the model's own jump, plain MSE",
        settings={"alpha_rows": "uniform", "adaptive_p": 0.0, "discrete_weight": "none"},
        sources={
            "alpha": "SplitMeanFlow Algorithm 1: lambda ~ U(0, 1) per row (alpha 1 with alpha_rows uniform)",
            "alpha_rows": "SplitMeanFlow Algorithm 1",
            "adaptive_p": "SplitMeanFlow: plain squared error",
            "discrete_weight": "SplitMeanFlow: no per-row weight",
            "ratio_fm": "ours: MeanFlow's share, the paper's boundary share is not verified here",
        },
    ),
)
_register(
    "shortcut",
    Objective(
        "shortcut",
        ScheduleSpec("constant", {"value": 0.875}),
        NO_ALPHA,
        None,
        "Shortcut models: two EMA half jumps = one jump on a dyadic grid, 1/8 of the batch, plain MSE",
        settings={
            "time_sampler": "dyadic",
            "dyadic_levels": 7,
            "fm_time": "single",
            "target_clamp": 4.0,
            "teacher_decay": 0.999,
            "adaptive_p": 0.0,
            "adam_b2": 0.999,
            "weight_decay": 0.1,
        },
        sources={
            "ratio_fm": "shortcut-models train.py bootstrap_every 8: 1/8 of the batch gets self-consistency targets",
            "time_sampler": "shortcut-models targets_shortcut.py: dt = 2^-k split evenly, t on that step's grid",
            "dyadic_levels": "shortcut-models train.py denoise_timesteps 128 = 2^7",
            "fm_time": "shortcut-models targets_shortcut.py: flow rows draw t once on the 1/128 grid",
            "target_clamp": "shortcut-models targets_shortcut.py: jnp.clip(x_t2, -4, 4), jnp.clip(v_target, -4, 4)",
            "teacher_decay": "shortcut-models train.py bootstrap_ema 1, target_update_rate 0.999",
            "adaptive_p": "shortcut-models train.py: mse_v, a plain mean",
            "adam_b2": "shortcut-models train.py lines 41-43 and 152: optax.adamw, beta1 0.9, beta2 0.999",
            "weight_decay": "shortcut-models train.py line 43: weight_decay 0.1, no mask (biases and norms decay too)",
        },
    ),
)
IMF = "imeanflow@bf60cd7"
_register(
    "imf",
    Objective(
        "imf",
        ScheduleSpec("constant", {"value": 0.5}),
        NO_ALPHA,
        None,
        "improved MeanFlow as released: JVP along its own velocity, velocity loss, pixel sums, half the rows r = t",
        settings={"fm_time": "max", "adaptive_eps": 0.01, "loss_reduction": "sum"},
        sources={
            "target": f"{IMF} imf.py 331-401; its separate velocity head (models/imfDiT.py, 8 of 12 blocks) is "
            "stood in for by the protocol's u(x_t, t, t), and its network sees h = t - r only, the protocol's "
            "t and t - r; unconditional, so no guidance (iMF's guided target is then v)",
            "ratio_fm": f"{IMF} configs/default.py data_proportion 0.5; imf.py sample_tr 126-139",
            "fm_time": f"{IMF} imf.py sample_tr 126-139: t, r = max, min of two draws, then r = t on those rows",
            "adaptive_eps": f"{IMF} configs/default.py norm_eps 0.01 (norm_p 1.0, the default p)",
            "loss_reduction": f"{IMF} imf.py 385-390: jnp.sum over axes (1, 2, 3)",
        },
    ),
)
SOFLOW = "SoFlow@3b60d60 cifar.yaml"
_register(
    "soflow",
    Objective(
        "soflow",
        ScheduleSpec("constant", {"value": 0.0}),
        ScheduleSpec("exponential", {"start": 1.0, "final": 0.0003125}),
        None,
        "SoFlow's CIFAR-10 recipe: solution consistency on every row, middle time l from t towards r over the run",
        settings={
            "time_sampler": "soflow",
            "time_mean": -0.9,
            "time_std": 1.6,
            "time_mean_r": -4.0,
            "time_std_r": 1.6,
            "adaptive_p": 0.75,
            "adaptive_eps": 0.001,
            "adam_b2": 0.999,
        },
        sources={
            "target": f"{SOFLOW}: Linear noising, Euler coefficients (f = x_t - (t - s) NN, the protocol's path); "
            "its U-Net is the protocol's SmallDiT",
            "ratio_fm": f"{SOFLOW} velocity_loss_ratio 0.0 (ImageNet: 0.75)",
            "alpha": f"{SOFLOW} l_schedule Exponent, l_init_ratio 1.0, l_end_ratio 0.0003125 over total_steps "
            "800k; models.py 228; here over the run (as AlphaFlow's curriculum)",
            "time_sampler": "SoFlow train.py 259-264",
            "time_mean": f"{SOFLOW} time_mean[2] -0.9 (t)",
            "time_std": f"{SOFLOW} time_std 1.6",
            "time_mean_r": f"{SOFLOW} time_mean[1] -4.0 (s, the end time)",
            "time_std_r": f"{SOFLOW} time_std 1.6",
            "adaptive_p": f"{SOFLOW} p 0.75",
            "adaptive_eps": f"{SOFLOW} eps 0.001",
            "adam_b2": f"{SOFLOW} betas [0.9, 0.999]; its CIFAR optimiser is RAdam (train.py 172), AdamW here; "
            "its EMA 0.9999 applied every 16 steps is the protocol's EMA here",
        },
    ),
)
_register(
    "lsd",
    Objective(
        "lsd",
        ScheduleSpec("constant", {"value": 0.75}),
        NO_ALPHA,
        None,
        "flow maps by Lagrangian self-distillation: the map's ODE in r against its own velocity, 75% diagonal rows",
        settings={
            "time_sampler": "uniform",
            "adaptive_p": 0.0,
            "loss_reduction": "sum",
            "grad_clip": 1.0,
            "adam_b2": 0.999,
        },
        sources={
            "target": "Boffi et al. 2025 Lagrangian self-distillation; Keely-Ai/flow-maps py/common/losses.py "
            "lsd_term (stopgrad teacher = the online params). Its off-diagonal (s, t) are unordered (backward maps "
            "too): the protocol trains r <= t only",
            "ratio_fm": "flow-maps setup_loss diag_fraction 0.75",
            "time_sampler": "flow-maps _sample_triangle: s, t ~ U(0, 1); diagonal rows t ~ U(0, 1)",
            "adaptive_p": "flow-maps PrecondFlowMap.calc_weight: exp(-w) L + w with a learned log-variance w(s, t), "
            "weight 1 at w = 0; the protocol's network has no weight head: plain squared error (p = 0). MeanFlow's "
            "p = 1 gives these rows, whose error starts at 0, a weight near 1/eps: measured, flow matching then "
            "does not learn in a 200-step smoke run",
            "loss_reduction": "flow-maps losses.py: a sum over pixels",
            "grad_clip": "flow-maps state_utils.setup_optimizer: clip_by_global_norm(1.0)",
            "adam_b2": "flow-maps state_utils.setup_optimizer: RAdam b2 0.999 (AdamW here; its lr 1e-2 with a "
            "1/sqrt schedule and its EDM2 U-Net are not the protocol's)",
        },
    ),
)
_register(
    "modular",
    Objective(
        "modular",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("warmup", {"start": 0.0, "end": 1.0, "until": 0.5}),
        None,
        "Modular MeanFlow: MeanFlow's loss with a share lambda of the gradient through du/dt, warmed up 0 -> 1",
        sources={
            "ratio_fm": "ours: MeanFlow's share (the paper's CIFAR-10 settings were not in reach)",
            "alpha": "Modular MeanFlow: lambda = min(1, step / T_warmup); T_warmup is ours (half the run): "
            "the paper's value was not in reach",
        },
    ),
)
_register(
    "ema_teacher",
    Objective(
        "ema_teacher",
        ScheduleSpec("constant", {"value": 0.5}),
        SIGMOID,
        None,
        "AlphaFlow's objective with its target from an EMA teacher (rate 0.99)",
        settings={"target_clamp": 4.0, "teacher_decay": 0.99},
        sources={
            "ratio_fm": "as alphaflow",
            "alpha": "as alphaflow",
            "target_clamp": "as alphaflow",
            "teacher_decay": "ours: a 100-step horizon, short against a 10,000-step run",
        },
    ),
)
