"""One trial: train a SmallDiT with one objective, score it, write result.json.

``train(config, report=None) -> TrialResult`` is the shared trainer every sweep trial
runs; it imports nothing from ``sweep`` or Ray. ``report(metrics)`` is called
every ``eval_every`` steps with the intermediate FID, so a scheduler can stop
bad trials early.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

from trainer.compile_cache import CompileCache, cache_root, graph_key
from trainer.config import PROTOCOL_VERSION, TrainConfig, from_flat
from trainer.data import DeviceImages, load_images
from trainer.fid import FidScorer
from trainer.model import MODEL_SIZES, SmallDiT
from trainer.objectives import TARGETS, make_schedule, make_traj_params, sample_times
from trainer.objectives.targets import attach_head
from trainer.objectives.schedules import progress_of
from trainer.runtime import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    device_name,
    resolve_device,
    versions,
)
from trainer.result import TrialResult, versions_json
from trainer.sampler import sample_images
from trainer.loss import make_loss_fn

CHECK_EVERY = 25  # steps between finiteness checks: each is one host sync
TRACKED = ("loss", "mse", "fm_mse")  # the rows of Trial.track
SAMPLE_BATCH = 1000  # sampler batch: divides the protocol's 5k and 50k, so one compiled shape


class Diverged(RuntimeError):
    """The loss became NaN or infinite; ``step`` is the first bad step."""

    def __init__(self, step: int, value: float):
        super().__init__(f"loss became {value} at step {step}")
        self.step = step


def build_model(cfg: TrainConfig, device) -> tuple[SmallDiT, SmallDiT]:
    """The online network and its EMA copy (fused attention: sampling).

    The online network takes math attention where its target takes a JVP (fused kernels have no forward-mode
    derivative), the fused kernel elsewhere (a finite-difference tangent included).
    """
    size = dataclasses.replace(MODEL_SIZES[cfg.model], time_scale=cfg.time_scale)
    net = attach_head(SmallDiT(size).to(device), cfg.target).set_attention("math" if cfg.takes_jvp else "fused")
    ema = copy.deepcopy(net).requires_grad_(False).eval().set_attention("fused")
    return net, ema


class Trial:
    """State and loop of one training run."""

    def __init__(self, cfg: TrainConfig, report=None, images: torch.Tensor | None = None):
        self.cfg, self.report = cfg, report
        self.device = resolve_device(cfg.device)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.data = DeviceImages(images if images is not None else load_images(cfg.dataset, cfg.data_dir), self.device)
        # Scoring is set up before training so a missing FID cache fails in seconds, not after the run.
        self.scorer = FidScorer(
            cfg.fid_mode, self.device, cfg.fid_cache or None, workers=0 if cfg.fid_mode == "standin" else None
        )
        torch.manual_seed(cfg.seed)  # right before the weights are drawn: nothing above may shift them
        self.net, self.ema = build_model(cfg, self.device)
        self.opt = torch.optim.AdamW(
            self.net.parameters(),
            lr=cfg.lr,
            betas=(cfg.adam_b1, cfg.adam_b2),
            weight_decay=cfg.weight_decay,
            fused=self.device.type == "cuda",
        )
        self.amp = cfg.amp and self.device.type == "cuda"
        # The sampler needs no JVP: fused attention, and compiled on a GPU (shapes are
        # fixed by SAMPLE_BATCH, so it compiles once per trial process).
        self.sampler_net = torch.compile(self.ema) if cfg.compile and self.device.type == "cuda" else self.ema
        # Teacher targets compute with an EMA of the online weights (math attention: it takes JVPs).
        self.teacher = copy.deepcopy(self.net).requires_grad_(False) if TARGETS[cfg.target].teacher else None
        self.compile_cache = None
        if cfg.compile:  # compiled graphs kept on the node and handed between nodes (trainer/compile_cache.py)
            self.compile_cache = CompileCache(cache_root(cfg.compile_cache), graph_key(cfg, device_name(self.device)))
            if self.compile_cache.warning:
                print(f"warning: {self.compile_cache.warning}", file=sys.stderr, flush=True)
        self.loss_fn = make_loss_fn(self.net, cfg.loss_spec(self.amp), compile=cfg.compile, teacher=self.teacher)
        self.time_spec = cfg.time_spec()
        traj = make_traj_params(cfg.ratio_fm, cfg.alpha)
        # The whole run's schedule, computed once: the step reads alpha from a
        # device tensor (no host->device copy per step, which would sync).
        self.schedule = [traj(cfg.batch_size, k, cfg.steps, self.device) for k in range(cfg.steps)]
        self.alphas = torch.tensor([a for _, a in self.schedule], device=self.device)
        strength = make_schedule(cfg.interval_weight, "interval_weight")  # the interval weight's s, step by step
        self.strengths = torch.tensor(
            [strength(progress_of(k, cfg.steps)) for k in range(cfg.steps)], device=self.device
        )
        # Per-step rows of TRACKED, kept on the device: the weighted loss (finiteness
        # checks), the unweighted MSE (the adaptive loss e / (e + eps) sits near 1 and
        # hides progress) and the MSE of rows with t_next = t (a fixed target: v).
        self.track = torch.full((len(TRACKED), cfg.steps), float("nan"), device=self.device)
        self.step, self.intermediate, self.checked = 0, [], 0
        # seconds spent before this process: a restored trial's costs add up over every attempt
        self.spent = {"train": 0.0, "eval": 0.0}
        ckpt_dir = cfg.checkpoint_dir or cfg.out_dir
        self.ckpt = checkpoint_path(ckpt_dir) if ckpt_dir and cfg.checkpoint_every else None
        if self.ckpt and self.ckpt.is_file():
            self.load(self.ckpt)

    # ------------------------------------------------------------------ step
    def train_step(self, k: int) -> None:
        cfg = self.cfg
        ratio_fm, alpha = self.schedule[k]
        x0 = self.data.batch(cfg.batch_size, self.gen)  # (B, 3, 32, 32)
        x1 = torch.randn(x0.shape, generator=self.gen, device=self.device)
        scale = cfg.interval_start + (1.0 - cfg.interval_start) * progress_of(k, cfg.steps)
        t, t_next = sample_times(cfg.batch_size, ratio_fm, self.gen, self.device, self.time_spec, interval_scale=scale)
        alpha_k = self.alphas[k]
        if cfg.alpha_rows == "uniform":  # each row its own split fraction alpha * U(0, 1) (SplitMeanFlow's lambda)
            alpha_k = alpha_k * torch.rand(cfg.batch_size, generator=self.gen, device=self.device)
        loss, err = self.loss_fn(x0, x1, t, t_next, alpha_k, continuous=alpha == 0.0, strength=self.strengths[k])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
        self.opt.step()
        update_ema(self.ema, self.net, cfg.ema_decay)
        if self.teacher is not None:
            update_ema(self.teacher, self.net, cfg.teacher_decay)
        fm = (t_next == t).float()
        self.track[:, k] = torch.stack([loss.detach(), err.mean(), (err * fm).sum() / fm.sum().clamp_min(1.0)])

    def check_finite(self, upto: int) -> None:
        """Reads the losses since the last check (one sync) and raises Diverged at the first bad one."""
        chunk = self.track[0, self.checked : upto].tolist()
        for i, value in enumerate(chunk):
            if not math.isfinite(value):
                raise Diverged(self.checked + i, value)
        self.checked = upto

    # ------------------------------------------------------------------ loop
    def run(self) -> TrialResult:
        """Trains, then scores: the final FID at ``sample_steps`` and at each of ``fid_nfe``."""
        cfg = self.cfg
        self.run_training()
        main = self.score(cfg.fid_samples)
        extra = {k: main if k == cfg.sample_steps else self.score(cfg.fid_samples, k) for k in cfg.fid_nfe}
        if self.compile_cache is not None:
            self.compile_cache.save()  # every graph of the trial is compiled by now
        return self.finish(main, extra, train_s=self.spent["train"], eval_s=self.spent["eval"])

    def run_training(self) -> None:
        """The training steps from the current one (0, or a checkpoint's) to the last, with the evaluations and
        checkpoints on the way."""
        cfg = self.cfg
        if self.step and self.intermediate and self.report:
            # The checkpoint is saved before its report is sent: a driver that died in between never saw the
            # last intermediate result. Sent again, it completes the history (a result seen twice changes nothing).
            self.report(dict(self.intermediate[-1]))
        start = t_last = time.perf_counter()
        k_last, train0, eval0 = self.step, self.spent["train"], self.spent["eval"]
        for k in range(self.step, cfg.steps):
            self.train_step(k)
            self.step = k + 1
            if self.step % CHECK_EVERY == 0 or self.step == cfg.steps:
                self.check_finite(self.step)
            metrics = None
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                now = time.perf_counter()
                metrics = self.evaluate(steps_per_s=(self.step - k_last) / (now - t_last))
                t_last, k_last = time.perf_counter(), self.step
                self.spent["eval"] += t_last - now
            if self.ckpt and self.step % cfg.checkpoint_every == 0:
                # after the evaluation (a restored trial keeps its FID), before the report (which may hand this
                # checkpoint to a scheduler)
                self.spent["train"] = train0 + (time.perf_counter() - start) - (self.spent["eval"] - eval0)
                self.save(self.ckpt)
            if metrics and self.report:
                self.report(dict(metrics))
        self.spent["train"] = train0 + (time.perf_counter() - start) - (self.spent["eval"] - eval0)

    def score(self, n: int, sample_steps: int | None = None):
        """FID of ``n`` samples of the EMA network (the sampler's seeded noise: the same for every call)."""
        cfg = self.cfg
        return self.scorer.score_model(
            self.sampler_net,
            n,
            seed=cfg.seed,
            sample_steps=sample_steps or cfg.sample_steps,
            batch_size=SAMPLE_BATCH,
            amp=self.amp,
        )

    def evaluate(self, steps_per_s: float) -> dict:
        """The intermediate metrics at this step (FID of ``eval_samples``, mean losses since the last one)."""
        self.check_finite(self.step)
        res = self.score(self.cfg.eval_samples) if self.cfg.eval_samples else None
        lo = max(0, self.step - self.cfg.eval_every)
        means = self.track[:, lo : self.step].mean(dim=1).tolist()  # one sync for all three
        metrics = {
            "step": self.step,
            **dict(zip(TRACKED, means)),
            "steps_per_s": steps_per_s,
            "progress": self.step / self.cfg.steps,
        }
        if res:
            metrics.update(intermediate_fid=res.fid, intermediate_fid_kind=res.fid_kind)
        self.intermediate.append(metrics)
        return metrics

    def finish(self, res, extra: dict, train_s: float, eval_s: float) -> TrialResult:
        """The trial's result. Seconds add up over every attempt of a restored trial (each checkpoint carries the
        totals so far; the steps between the last checkpoint and a crash are counted once, when they are rerun):
        ``train_seconds`` training steps only, ``eval_seconds`` intermediate FIDs, ``fid_seconds`` every final FID."""
        cfg = self.cfg
        track = self.track.cpu()
        every = max(1, cfg.steps // 100)
        fid_s = res.seconds + sum(r.seconds for k, r in extra.items() if k != cfg.sample_steps)
        final_loss, final_mse, final_fm_mse = track[:, -every:].mean(dim=1).tolist()  # the rows of TRACKED
        result = TrialResult(
            final_fid=res.fid,
            fid_kind=res.fid_kind,
            fid_samples=res.num_samples,
            best_intermediate_fid=min(
                (m["intermediate_fid"] for m in self.intermediate if "intermediate_fid" in m), default=None
            ),
            final_loss=final_loss,
            final_mse=final_mse,
            final_fm_mse=final_fm_mse,
            train_seconds=train_s,
            eval_seconds=eval_s,
            fid_seconds=fid_s,
            wall_seconds=train_s + eval_s + fid_s,
            step_ms=1000.0 * train_s / cfg.steps,
            gpu=device_name(self.device),
            config_hash=cfg.config_hash(),
            protocol_version=PROTOCOL_VERSION,
            versions=versions_json(versions()),
            final_fid_nfe={k: r.fid for k, r in extra.items()},
            fid_kind_nfe={k: r.fid_kind for k, r in extra.items()},
            intermediate=self.intermediate,
            # [step, loss, mse, fm_mse], each averaged over 1% of the run
            loss_curve=[[k] + track[:, k : k + every].mean(dim=1).tolist() for k in range(0, cfg.steps, every)],
        )
        if cfg.out_dir:
            out = Path(cfg.out_dir)
            save_sample_grid(self.ema, out / "samples.png", seed=cfg.seed, steps=cfg.sample_steps)
            atomic_write_json(out / "result.json", {"status": "completed", "config": cfg.to_flat(), **result.to_json()})
        return result

    # ------------------------------------------------------------ checkpoint
    def save(self, path: Path) -> None:
        atomic_torch_save(
            path,
            {
                "config": self.cfg.to_flat(),
                "config_hash": self.cfg.config_hash(),
                "step": self.step,
                "net": self.net.state_dict(),
                "ema": self.ema.state_dict(),
                "opt": self.opt.state_dict(),
                "teacher": self.teacher.state_dict() if self.teacher is not None else None,
                "track": self.track.cpu(),
                "intermediate": self.intermediate,
                "spent": self.spent,
                "gen": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
        )

    def load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
            state["config_hash"], state["net"], state["step"]
        except Exception as e:  # truncated, garbage, or another program's file
            raise ValueError(
                f"checkpoint {path} is not a readable checkpoint ({type(e).__name__}); remove it or use another out_dir"
            ) from None
        theirs = (state["config_hash"], state["config"].get("seed"))
        ours = (self.cfg.config_hash(), self.cfg.seed)
        if theirs != ours:  # the seed is not in the hash, but a run continued on another seed is another run
            raise ValueError(
                f"checkpoint {path} belongs to config {theirs[0]} seed {theirs[1]}, "
                f"not {ours[0]} seed {ours[1]}; remove it or use another out_dir"
            )
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        self.opt.load_state_dict(state["opt"])
        self.track.copy_(state["track"].to(self.device))
        self.gen.set_state(state["gen"].cpu() if hasattr(state["gen"], "cpu") else state["gen"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.step = self.checked = state["step"]
        self.intermediate = state["intermediate"]
        self.spent = dict(state.get("spent", self.spent))  # checkpoints written before costs were kept: from 0


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, over all parameters in one fused call."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - decay)


def checkpoint_path(out_dir: str | Path) -> Path:
    """Where a trial's checkpoint lives: a folder of its own, so it can be handed over whole."""
    return Path(out_dir) / "ckpt" / "checkpoint.pt"


def save_sample_grid(net, path: Path, seed: int = 0, steps: int = 10, n: int = 64) -> None:
    """An 8x8 grid of samples from a fixed seed, so grids of different trials are comparable."""
    import io

    import torchvision
    from PIL import Image

    images = sample_images(net, n, seed=seed + 7919, steps=steps, batch_size=n)
    grid = torchvision.utils.make_grid(images, nrow=8, padding=2)  # (3, H, W) uint8
    buf = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def train(config, report=None, images: torch.Tensor | None = None) -> TrialResult:
    """Runs one trial. ``config``: a TrainConfig or a flat dict (see ``trainer.config``)."""
    cfg = config if isinstance(config, TrainConfig) else from_flat(config)
    trial = Trial(cfg, report, images)
    try:
        return trial.run()
    finally:
        trial.scorer.close()
