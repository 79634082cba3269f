"""Speed of a trial's parts, one JSON line per measured thing.

    python -m trainer.bench --device cpu --size tiny     # seconds, on any laptop
    python -m trainer.bench --device cuda --size seed    # the research protocol's sizes, on a GPU
    python -m trainer.bench --device cuda --size seed --precision-check   # bf16 vs fp32 (trainer/precision.py)

Measures: the training step per objective (naive: target from the plain target
function, then a second forward, fp32 eager; fast: fused target, compiled
whole, in fp32 and, on a GPU, also under bf16 autocast), with time to first
step (compilation included; compiled: cold, from an empty inductor cache, and
warm, that graph already in the on-disk caches) and peak memory; 10-step Euler
sampling images/s; clean-fid resize and feature images/s. Timings are real
measurements of this machine: nothing is assumed.
"""

from __future__ import annotations

import json
import pickle
import os
import re
import time

import torch

from trainer.cli import Parser
from trainer.model import MODEL_SIZES, SmallDiT
from trainer.objectives import OBJECTIVES, TARGETS, make_schedule, sample_times
from trainer.objectives.targets import attach_head
from trainer.loss import make_loss_fn

ONLY = ("step", "naive", "sampler", "fid")

SIZES = {  # model, batch, sampler batch, sampler images, fid images
    "tiny": ("tiny", 16, 64, 256, 64),
    "seed": ("seed", 128, 2000, 10_000, 5_000),
}
# name: flat config keys. Every named objective at its own settings, measured at the middle of its run
# (alpha schedules move), plus AlphaFlow's discrete branch on its own.
STEP_CASES = {name: {"objective": name} for name in OBJECTIVES} | {
    "alphaflow_discrete": {"objective": "alphaflow", "alpha.schedule": "constant", "alpha.value": 0.5},
    "alphaflow_continuous": {"objective": "alphaflow", "alpha.schedule": "constant", "alpha.value": 0.0},
    "vr_meanflow_beta_0.5": {"objective": "meanflow", "target": "vr_meanflow", "tangent_beta": 0.5},
}


def _other_tangent(case: dict) -> str:
    from trainer.config import from_flat

    return "jvp" if from_flat(case).tangent == "fd" else "fd"


# every case that takes a derivative, with the other tangent (jvp <-> fd): its cost against the JVP form
SWAPPED = {
    f"{name}_{_other_tangent(case)}": {**case, "tangent": _other_tangent(case)}
    for name, case in list(STEP_CASES.items())
    if TARGETS[case.get("target", OBJECTIVES[case["objective"]].target)].jvp != "no"
    and name not in ("alphaflow", "ema_teacher", "alphaflow_discrete")  # mid-run they take the discrete step
}
STEP_CASES |= SWAPPED


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def naive_loss(net, x0, x1, t, t_next, alpha, *, continuous, spec):
    """The seed script's way: the plain target function, then a second forward for the loss."""
    tt = t[:, None, None, None]
    x_t, v = (1 - tt) * x0 + tt * x1, x1 - x0
    dt = alpha * (t - t_next)
    target = TARGETS[spec.target].fn(net, x_t, t, t_next, dt, v, x0.device)
    err = (net(x_t, t, t_next) - target).pow(2).flatten(1).mean(1)
    return (err / (err.detach() + spec.adaptive_eps)).mean(), err.detach()


def _stepper(name, device, size, fast: bool, compile_: bool, amp: bool):
    """(config, target record, one(): a training step of case ``name``), built as the trainer builds them."""
    import copy

    from trainer.config import from_flat
    from trainer.objectives import make_traj_params

    model, batch = SIZES[size][:2]
    cfg = from_flat({**STEP_CASES[name], "model": model, "batch_size": batch})
    ratio_fm, alpha = make_traj_params(cfg.ratio_fm, cfg.alpha)(batch, 1, 3, device)  # the middle of the run
    rec_t = TARGETS[cfg.target]
    torch.manual_seed(0)
    # as the trainer: math attention where a JVP is taken, the fused kernel elsewhere
    net = attach_head(SmallDiT(MODEL_SIZES[model]).to(device), cfg.target)
    net.set_attention("math" if cfg.takes_jvp else "fused")
    teacher = copy.deepcopy(net).requires_grad_(False) if rec_t.teacher else None
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=device.type == "cuda")
    amp = fast and amp
    spec = cfg.loss_spec(amp)
    time_spec = cfg.time_spec()
    loss_fn = (
        make_loss_fn(net, spec, compile=compile_, teacher=teacher)
        if fast
        else (lambda *a, continuous: naive_loss(net, *a, continuous=continuous, spec=spec))
    )
    g = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(batch, 3, 32, 32, device=device, generator=g)
    alpha_t = torch.tensor(alpha, device=device)
    strength = torch.tensor(make_schedule(cfg.interval_weight)(0.5), device=device)  # the middle of the run
    if cfg.alpha_rows == "uniform":  # as the trainer: each row its own share of the step's alpha
        alpha_t = alpha_t * torch.rand(batch, device=device, generator=g)

    def one():
        x1 = torch.randn(x0.shape, device=device, generator=g)
        t, t_next = sample_times(batch, ratio_fm, g, device, time_spec)
        loss, _ = loss_fn(x0, x1, t, t_next, alpha_t, continuous=alpha == 0.0, strength=strength)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return cfg, rec_t, one


def bench_step(
    name, device, size, fast: bool, steps: int, warmup: int, compile_: bool = False, amp: bool = False
) -> dict:
    cfg, rec_t, one = _stepper(name, device, size, fast, compile_, amp)
    amp = fast and amp
    rec = {
        "what": "train_step",
        "objective": name,
        "target": cfg.target,
        "jvp": rec_t.jvp,
        "tangent": cfg.tangent,
        "tangent_swapped": name in SWAPPED,  # the other tangent than its objective's (sweep.simulate skips it)
        "variant": "fast" if fast else "naive",
        "size": size,
        "batch": cfg.batch_size,
        "device": str(device),
        "compiled": fast and compile_,
        "bf16": amp,
    }
    start = time.perf_counter()
    one()
    _sync(device)
    rec["first_step_s"] = round(time.perf_counter() - start, 2)
    for _ in range(warmup):
        one()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = one()
    _sync(device)
    rec["ms_per_step"] = round(1000 * (time.perf_counter() - start) / steps, 2)
    rec["loss_finite"] = bool(torch.isfinite(loss).item())
    if device.type == "cuda":
        rec["peak_mem_GiB"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if fast and compile_:
        rec["first_step_warm_s"] = first_step_warm(name, device, size, amp)
    return rec


def first_step_warm(name, device, size, amp: bool) -> float:
    """Seconds to the first compiled step with the compile state of a new process (dynamo and inductor's
    in-memory caches cleared) but this graph in the on-disk caches: what a later trial on the node pays."""
    from torch._inductor.utils import clear_caches

    torch._dynamo.reset()
    clear_caches()
    _, _, one = _stepper(name, device, size, True, True, amp)
    start = time.perf_counter()
    one()
    _sync(device)
    return round(time.perf_counter() - start, 2)


def bench_sampler(device, size, compile_: bool, amp: bool) -> dict:
    from trainer.sampler import euler_sample

    model, _, batch, n, _ = SIZES[size]
    net = SmallDiT(MODEL_SIZES[model]).to(device).eval().set_attention("fused")
    fn = torch.compile(net) if compile_ else net

    def run(batches):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for _ in range(batches):
                euler_sample(fn, torch.randn(batch, 3, 32, 32, device=device), 10)
        _sync(device)

    start = time.perf_counter()
    run(1)  # warm-up and compilation, outside the timing
    first = time.perf_counter() - start
    start = time.perf_counter()
    run(max(1, n // batch))
    dt = time.perf_counter() - start
    images = max(1, n // batch) * batch
    return {
        "what": "euler10_sampling",
        "size": size,
        "batch": batch,
        "images": images,
        "compiled": compile_,
        "bf16": amp,
        "first_batch_s": round(first, 2),
        "images_per_s": round(images / dt, 1),
    }


def bench_fid_features(device, size, workers: int) -> list[dict]:
    """clean-fid's resize across ``workers`` processes, and the feature net's images/s."""
    import torchvision

    from trainer.data import synthetic_images
    from trainer.fid_features import ResizePool, StandinFeatures, extract_features

    n = SIZES[size][4]
    images = synthetic_images(n)
    out = []
    with ResizePool(workers) as pool:
        hwc = images.permute(0, 2, 3, 1).numpy()
        list(pool.map(hwc[: workers * 8 or 8], 8))  # start the workers outside the timing
        start = time.perf_counter()
        for _ in pool.map(hwc, 250):
            pass
        dt = time.perf_counter() - start
        out.append({"what": "clean_resize", "images": n, "workers": workers, "images_per_s": round(n / dt, 1)})
        if size == "seed":  # Inception-v3's compute (random weights: the real ones may be absent offline)
            net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
            net.fc = torch.nn.Identity()
            model = net.to(device).eval()
        else:
            model = StandinFeatures().to(device)
        start = time.perf_counter()
        extract_features(images, model, device, pool, batch_size=500)
        _sync(device)
        dt = time.perf_counter() - start
        out.append(
            {
                "what": "fid_features",
                "model": type(model).__name__,
                "images": n,
                "workers": workers,
                "images_per_s": round(n / dt, 1),
                "note": "resize + features, pipelined",
            }
        )
    return out


def main(argv=None) -> int:
    p = Parser(prog="python -m trainer.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", choices=list(SIZES), default="tiny")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="resize processes")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto", help="auto: on for CUDA only")
    p.add_argument("--only", default="", help="comma list of: " + ",".join(ONLY))
    p.add_argument(
        "--cases", default="", help="comma list of training-step cases (default: all): " + ",".join(STEP_CASES)
    )
    p.add_argument("--precision-check", action="store_true", help="bf16 vs fp32 of u, the JVP term and samples")
    p.add_argument("--images", type=int, default=1000, help="samples compared by --precision-check")
    p.add_argument("--checkpoint", help="--precision-check on a trial checkpoint's EMA network")
    args = p.parse_args(argv)
    only = set(filter(None, args.only.split(","))) or set(ONLY)
    if only - set(ONLY):
        p.error(f"--only {args.only!r} names {', '.join(sorted(only - set(ONLY)))}; choose from {', '.join(ONLY)}")
    cases = list(filter(None, args.cases.split(","))) or list(STEP_CASES)
    if set(cases) - set(STEP_CASES):
        unknown = ", ".join(sorted(set(cases) - set(STEP_CASES)))
        p.error(f"--cases {args.cases!r} names {unknown}; choose from {', '.join(STEP_CASES)}")
    for flag in ("steps", "images"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} {getattr(args, flag)} must be a positive integer")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        p.error(f"--device {args.device} is not cpu, cuda or cuda:N")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA GPU is visible")
    compile_ = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    emit(
        {
            "what": "machine",
            "device": str(device),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cpus": os.cpu_count(),
        }
    )
    if compile_:  # an empty inductor cache: first_step_s is a cold start, first_step_warm_s a warm one
        import tempfile

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-inductor-")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.precision_check:
        from trainer.precision import precision_check

        if args.checkpoint and not os.path.isfile(args.checkpoint):
            p.error(f"--checkpoint {args.checkpoint} is not a file")
        try:
            emit(precision_check(device, SIZES[args.size][0], SIZES[args.size][1], args.images, args.checkpoint))
        except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:  # not a trial checkpoint
            p.error(f"--checkpoint {args.checkpoint} is not a readable trial checkpoint ({type(e).__name__})")
        return 0
    precisions = (False, True) if device.type == "cuda" else (False,)  # bf16 autocast: GPU only
    for name in cases:
        if "naive" in only:
            emit(bench_step(name, device, args.size, False, args.steps, args.warmup))
        if "step" in only:
            for amp in precisions:
                emit(bench_step(name, device, args.size, True, args.steps, args.warmup, compile_, amp))
    if "sampler" in only:
        for amp in precisions:
            emit(bench_sampler(device, args.size, compile_, amp))
    if "fid" in only:
        for rec in bench_fid_features(device, args.size, args.workers):
            emit(rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
