"""Where every default comes from: a released file and key, a paper section, or "ours" with a reason.

``python -m trainer --describe`` prints these tables, and docs/objectives.md's
provenance section is written from them (``tests/trainer/test_provenance.py``
checks that every config field and every named objective's setting has an entry).
"""

from __future__ import annotations

import dataclasses

PY_MF = "py-meanflow (MeanFlow's official PyTorch port)"
JAX_MF = "meanflow (MeanFlow's official JAX code)"
AF = "AlphaFlow's released code"

# Config defaults (``TrainConfig``): field -> source.
FIELDS = {
    "preset": "the protocol's preset, shown here; a bare config takes 'smoke' (ours: it runs on a CPU in seconds)",
    "target": "the seed task's reference objective (MeanFlow)",
    "ratio_fm": "MeanFlow Table 1a (25% r != t); AlphaFlow's alphaflow-meanflow-latentspace-B-2 ratio_fm 0.75",
    "alpha": "MeanFlow = AlphaFlow's alpha 0 (its alphaflow-meanflow experiment)",
    "alpha_rows": f"{AF}: one alpha per step (loss.py sample_traj_params)",
    "time_sampler": f"{JAX_MF} meanflow.py noise_dist 'logit_normal'",
    "time_mean": f"{JAX_MF} configs/default.py P_mean -0.4 (ImageNet)",
    "time_std": f"{JAX_MF} configs/default.py P_std 1.0 (ImageNet)",
    "time_mean_r": f"{JAX_MF} meanflow.py sample_tr: both draws share one distribution",
    "time_std_r": f"{JAX_MF} meanflow.py sample_tr: both draws share one distribution",
    "fm_time": f"{AF} loss.py sample_traj_params: t_fm = t_next_fm = one draw",
    "dyadic_levels": "shortcut-models train.py denoise_timesteps 128 = 2^7 (used by the dyadic sampler only)",
    "interval_start": "ours: 1 = no interval curriculum, the released codes have none",
    "adaptive_p": f"{AF} loss.py weight / (loss + eps) (p = 1); MeanFlow Sec. 4.3 norm_p 1.0",
    "adaptive_eps": f"{AF} adaptive_loss_weight_eps: the value is in its loss config, not in the snapshot read; "
    "1e-3 as MeanFlow's py-meanflow norm_eps",
    "loss_reduction": f"{AF} loss.py .flatten(1).mean(1); MeanFlow's codes sum over pixels (meanflow_cifar)",
    "discrete_weight": f"{AF} loss.py weight_d = ones * alpha",
    "target_clamp": f"ours: off by default; {AF} clips discrete targets at 4 (the alphaflow objective sets it)",
    "teacher_decay": "ours: a 100-step horizon for ema_teacher; shortcut sets 0.999 (its target_update_rate)",
    "tangent_beta": "0: MeanFlow's tangent (v, 1, 0); Lu & Wang 2026 (arXiv 2605.09235) method.tex: beta = 0 is "
    "vanilla MeanFlow, and their DiT FID is best there",
    "tangent": "MeanFlow's codes: torch.func.jvp / jax.jvp; fd is TiM's dde (WZDTHU/TiM@b431859 "
    "tim/schedulers/transition.py 108-129), set by the tim objective",
    "tangent_eps": "WZDTHU/TiM@b431859 configs/c2i/tim_xl_p2_256.yaml differential_epsilon 0.005",
    "tim_weight": "WZDTHU/TiM@b431859 configs/c2i/*.yaml weight_time_type sqrt (transition.py 150-161)",
    "tim_time_map": "WZDTHU/TiM@b431859 configs/c2i/*.yaml weight_time_tangent True (transition.py 142-143)",
    "tim_dir": "WZDTHU/TiM@b431859 projects/train/trainer_c2i.py 364 use_dir_loss=True (transition.py 206-209)",
    "dmf_pairs": "kyungmnlee/dmf@a6db0f6 loss.py 30-35: the loss of (N,) errors and (N, 1, 1, 1) log-variances "
    "broadcasts over every pair; 'row' is the per-row form",
    "imf_velocity_rows": "Lyy-iiis/imeanflow@bf60cd7 imf.py 389-390: its velocity head's loss on every row",
    "ratio_r0": "ours: 0, no rows with t_next = 0 beyond those sampled (the tim objective sets TiM's)",
    "interval_weight": "ours: off (constant 0), as the released codes; meanflow_interval sets arXiv 2511.19065's",
    "model": "the protocol's SmallDiT (hidden 512, depth 8, patch 2); smoke: 'tiny' (ours, for CPU runs)",
    "time_scale": f"{JAX_MF} models_dit.py timestep_embedding `t * freqs` and {AF} dit.py: unscaled",
    "dataset": "the protocol: CIFAR-10; smoke: synthetic images (ours, offline)",
    "data_dir": "ours: ./data",
    "steps": "the protocol: 10,000 (preset seed); smoke 200",
    "batch_size": "the protocol: 128 (preset seed); smoke 16",
    "lr": f"{JAX_MF} configs/default.py learning_rate 1e-4; {AF} experiments lr 1e-4; smoke 1e-3 (ours: 200 steps)",
    "adam_b1": f"{AF} experiments betas [0.9, 0.95]; {JAX_MF} optax.adamw default b1 0.9",
    "adam_b2": f"{AF} experiments betas [0.9, 0.95]; {JAX_MF} configs/default.py adam_b2 0.95",
    "weight_decay": f"{AF} experiments weight_decay 0.0; {JAX_MF} train.py weight_decay=0",
    "ema_decay": "ours: 0.999, a 1,000-step horizon for a 10,000-step run (the released codes use 0.9999 over far "
    "longer runs); smoke 0.99",
    "grad_clip": "ours: off, as in the released codes",
    "seed": "ours: 0",
    "eval_every": "ours: 2,000 at the protocol (5 intermediate FIDs)",
    "eval_samples": "ours: 5,000 at the protocol, labelled as such",
    "fid_samples": "the protocol: 50,000",
    "fid_mode": "the protocol: clean-fid against CIFAR-10 train",
    "fid_cache": "ours: $MEANFLOW_FID_CACHE or ~/.cache/meanflow-sweep/fid",
    "sample_steps": "the protocol: 10-step Euler",
    "fid_nfe": "ours: none beyond the protocol's; MeanFlow's point is 1- and 2-step generation (--set fid_nfe=1,2)",
    "device": "ours: CUDA when visible",
    "compile": "ours: torch.compile on GPU (speed only; compiled and eager agree in tests); smoke: off",
    "compile_cache": "ours: $MEANFLOW_COMPILE_CACHE or ~/.cache/meanflow-sweep/compile (a sweep: <results-dir>/"
    "compile-cache), one folder per node; /tmp, torch's default, does not outlive a batch job",
    "amp": f"{PY_MF} meanflow.py and eval_loop.py run the JVP and sampling with autocast off; bf16 stays opt-in "
    "until `python -m trainer.bench --precision-check` is measured on a GPU",
    "out_dir": "ours",
    "checkpoint_every": "ours: 0 for single trials; sweeps checkpoint at every intermediate FID",
    "checkpoint_dir": "ours",
}


def field_rows(cfg) -> list[tuple[str, str, str]]:
    """(field, default, source) for every field of a config."""
    rows = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        shown = f"{value.name} {value.params}" if hasattr(value, "params") else repr(value)
        rows.append((f.name, shown, FIELDS.get(f.name, "MISSING")))
    return rows


def objective_rows(objectives) -> list[tuple[str, str, str, str]]:
    """(objective, key, value, source) for every setting each named objective sets."""
    from trainer.objectives import TARGETS

    rows = []
    for name, obj in objectives.items():
        differences = f"; {obj.sources['target']}" if "target" in obj.sources else ""
        rows.append((name, "target", obj.target, f"{obj.description} ({TARGETS[obj.target].source}){differences}"))
        for key, value in (("ratio_fm", obj.ratio_fm), ("alpha", obj.alpha)):
            unused = key == "alpha" and not TARGETS[obj.target].uses_alpha and "unused: the target ignores alpha"
            rows.append((name, key, f"{value.name} {value.params}", obj.sources.get(key) or unused or "MISSING"))
        for key, value in obj.settings.items():
            rows.append((name, key, repr(value), obj.sources.get(key, "MISSING")))
    return rows


def listing(rows) -> str:
    """A Markdown list of (key, value, source) rows, or of (group, key, value, source) rows under one item per
    group; wrapped at 116 characters."""
    import textwrap

    out, group = [], None
    for row in rows:
        indent = ""
        if len(row) == 4:
            if row[0] != group:
                group = row[0]
                out.append(f"- **{group}**")
            row, indent = row[1:], "  "
        key, value, source = row
        out += textwrap.wrap(
            f"- `{key}` = `{value}`: {source}",
            width=116,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return "\n".join(out)
