"""Presets: the values of the config fields marked ``FROM_PRESET`` (``trainer.config``), one dict per name."""

from __future__ import annotations

from trainer.registry import Registry

PRESETS = Registry("preset")

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
        lr=1e-4,  # MeanFlow's and AlphaFlow's DiT setting
        ema_decay=0.999,  # horizon ~1,000 steps: a 10k-step run has no use for 0.9999
        compile=True,  # torch.compile the training step and the sampler (GPU)
        fid_nfe=(),  # the protocol's score only; add 1- and 2-step scores with --set fid_nfe=1,2
    )
)
# A CPU smoke run of about a minute: tiny model, synthetic images, and a
# stand-in FID (small seeded feature net) that is labelled as such.
SMOKE = dict(
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
    fid_nfe=(),
)
PRESETS.register("smoke")(SMOKE)
# Ours: the smallest run on two CPU cores whose ranking means something: the smoke task trained 7.5x longer.
# MeanFlow's 1-step FID then comes out under half plain flow matching's, well outside the seed-to-seed spread
# of the paired difference (docs/cpu-reference.md). A proxy: it ranks objectives on a toy distribution, not
# CIFAR-10. Few-step generation is the point of these objectives: scored at 1, 2 and 10 steps.
PRESETS.register("cpu")({**SMOKE, "steps": 1500, "eval_every": 500, "fid_nfe": (1, 2)})
