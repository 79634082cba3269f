"""Named objectives of the late-2025 wave (``flowmaps.py``) and the interval weight, each with its sources.

Each follows its release within the protocol (its SmallDiT, CIFAR-10, 10,000 steps at batch 128); what the
protocol cannot take is said in its target's description and in docs/objectives.md.
"""

from __future__ import annotations

from trainer.objectives.named import NO_ALPHA, Objective, _register
from trainer.objectives.schedules import ScheduleSpec

TVM_REPO = "lumalabs/tvm@82e8e5d"
TIM_REPO = "WZDTHU/TiM@b431859"
TIM_YAML = f"{TIM_REPO} configs/c2i/tim_xl_p2_256.yaml"
DMF_REPO = "kyungmnlee/dmf@a6db0f6"
HALF_ROWS = (
    "the release gives every sample both terms (weight 1 each); in the protocol's batch of 128 half the rows take "
    "each, the same expected loss up to a constant factor"
)

_register(
    "tvm",
    Objective(
        "tvm",
        ScheduleSpec("constant", {"value": 0.5}),
        NO_ALPHA,
        None,
        "Terminal Velocity Matching as released: the jump's end-time derivative meets an EMA teacher's velocity, "
        "gradient through the JVP, plus flow matching",
        settings={
            "time_sampler": "tvm",
            "time_mean": -0.4,
            "time_std": 1.0,
            "time_mean_r": -0.8,
            "time_std_r": 1.0,
            "teacher_decay": 0.99,
            "adaptive_p": 0.0,
        },
        sources={
            "ratio_fm": f"{TVM_REPO} training/wrapper.py 186: loss = terminal + fm; {HALF_ROWS}",
            "time_sampler": f"{TVM_REPO} training/loss.py sample_ts 39-64",
            "time_mean": f"{TVM_REPO} training/loss.py s_P_mean -0.4 (configs im256_w2 the same); flow rows' s'",
            "time_std": f"{TVM_REPO} training/loss.py s_P_std 1.0",
            "time_mean_r": f"{TVM_REPO} training/loss.py gap_P_mean -0.8 (the tvm sampler's interval)",
            "time_std_r": f"{TVM_REPO} training/loss.py gap_P_std 1.0",
            "teacher_decay": f"{TVM_REPO} configs ema_target_beta 0.99 (training_loop.py 209, 401-406)",
            "adaptive_p": f"{TVM_REPO} training/wrapper.py 177-186: plain squared errors, mean over pixels",
        },
    ),
)
_register(
    "tim",
    Objective(
        "tim",
        ScheduleSpec("constant", {"value": 0.5}),
        NO_ALPHA,
        None,
        "Transition Models as released: MeanFlow's target by a central difference, tan-sqrt time weight, "
        "cosine term, a tenth of the rows r = 0",
        settings={
            "ratio_r0": 0.2,
            "fm_time": "max",
            "tangent": "fd",
            "tangent_eps": 0.005,
            "adaptive_eps": 1e-5,
            "weight_decay": 0.01,
            "grad_clip": 1.0,
        },
        sources={
            "ratio_fm": f"{TIM_YAML} diffusion_ratio 0.5 (transition.py 53-54: the first rows get r = t)",
            "ratio_r0": f"{TIM_YAML} consistency_ratio 0.1 of the batch (transition.py 56-58: the last rows get r = "
            "0) = 0.2 of the half with r < t",
            "fm_time": f"{TIM_REPO} transition.py 47-54: t the larger of two draws, then r = t on those rows",
            "tangent": f"{TIM_YAML} derivative_type dde (transition.py 108-129)",
            "tangent_eps": f"{TIM_YAML} differential_epsilon 0.005",
            "adaptive_eps": f"{TIM_REPO} transition.py 166-168: 1 / (sg(loss) + 10e-6), p 1",
            "weight_decay": f"{TIM_YAML} weight_decay 0.01 (AdamW, betas [0.9, 0.95] as the default)",
            "grad_clip": f"{TIM_YAML} max_grad_norm 1.0",
        },
    ),
)
_register(
    "dmf",
    Objective(
        "dmf",
        ScheduleSpec("step", {"before": 1.0, "after": 0.5, "at": 10 / 11}),
        NO_ALPHA,
        None,
        "Decoupled MeanFlow as released: flow matching first, then flow and MeanFlow rows under a learned "
        "log-variance weight",
        settings={
            "time_mean": 0.4,
            "time_std": 1.0,
            "time_mean_r": -1.2,
            "time_std_r": 1.0,
            "adaptive_eps": 0.01,
            "grad_clip": 1.0,
        },
        sources={
            "ratio_fm": f"{DMF_REPO} scripts: 4M flow-matching steps (train_fm.py, train_sit_xl_2_256.sh), then "
            f"400k DMF steps (train_dmf_xl_2_256.sh): 10/11 of the run as flow matching, then loss.py 174 0.5 "
            f"(flow + MeanFlow): {HALF_ROWS.replace(' (weight 1 each)', '')}",
            "time_mean": f"{DMF_REPO} train_dmf.py 420-425 P_mean_t 0.4 (loss.py 135-140: t the larger draw)",
            "time_std": f"{DMF_REPO} train_dmf.py P_std_t 1.0",
            "time_mean_r": f"{DMF_REPO} train_dmf.py P_mean_r -1.2",
            "time_std_r": f"{DMF_REPO} train_dmf.py P_std_r 1.0",
            "adaptive_eps": f"{DMF_REPO} loss.py 30 log_lv_loss eps 0.01",
            "grad_clip": f"{DMF_REPO} train_dmf.py 453 max_grad_norm 1.0",
        },
    ),
)
_register(
    "meanflow_interval",
    Objective(
        "meanflow",
        ScheduleSpec("constant", {"value": 0.75}),
        NO_ALPHA,
        None,
        "MeanFlow with the small-to-large interval weight of arXiv 2511.19065 (k = 1)",
        settings={
            "interval_weight.schedule": "power",
            "interval_weight.start": 1.0,
            "interval_weight.end": 0.0,
            "interval_weight.k": 1.0,
        },
        sources={
            "ratio_fm": "as meanflow (the paper follows MeanFlow's setup)",
            "interval_weight.schedule": "Kim, Go et al. 2025 (arXiv 2511.19065) Sec. 5: beta = 1 - s + lambda s "
            "(1 - (t - r)), s = 1 - (i / T)^k, lambda = 1 / E[1 - (t - r)]; its code was not in reach",
            "interval_weight.start": "arXiv 2511.19065: s = 1 at the first step",
            "interval_weight.end": "arXiv 2511.19065: s = 0 at the last step (MeanFlow's loss)",
            "interval_weight.k": "arXiv 2511.19065: k = 1 in every run (its ablation: 0.5 and 2 worse)",
        },
    ),
)
_register(
    "meanflow_fd",
    Objective(
        "meanflow",
        ScheduleSpec("constant", {"value": 0.75}),
        NO_ALPHA,
        None,
        "MeanFlow with du/dt by TiM's central difference in place of the JVP (the fused attention kernel)",
        settings={"tangent": "fd", "tangent_eps": 0.005},
        sources={
            "ratio_fm": "as meanflow",
            "tangent": f"{TIM_YAML} derivative_type dde (transition.py 108-129): a central difference of two "
            "forwards without gradient",
            "tangent_eps": f"{TIM_YAML} differential_epsilon 0.005",
        },
    ),
)
