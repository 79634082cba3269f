"""What a simulated trial costs and measures: the surface, each target's cost per step, the protocol's schedule
of evaluations, and the time scale. Built once in the driver and handed to every simulated trial (pure Python:
a trial never loads torch).

Costs come from ``trainer.bench``'s JSON lines (``train_step`` records, fused variant): a target's step costs
its median ``ms_per_step`` over the cases that train it, relative to plain flow matching's. Absolute GPU time
is set by two figures: a flow-matching protocol trial's training time and one final FID's time on one GPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from sweep.simulate.surface import Surface

COSTS_FILE = Path(__file__).with_name("bench_cpu_tiny.jsonl")  # the default table of step costs (its first line
# says how it was measured)
FM_TARGET = "pureflow"  # plain flow matching: the unit of the relative costs


class CostsError(ValueError):
    """A step-cost table that cannot be read or lacks a target: one sentence."""


def relative_costs(path: Path) -> dict[str, float]:
    """target -> its step's cost relative to flow matching's, from ``trainer.bench`` output (JSON lines).

    A table may hold several bench runs, each opened by a ``provenance`` line: a run's costs are relative to its
    own flow-matching step, and a target measured in several runs takes the median of theirs. Cases that run a
    target with the other tangent than its objective's (``tangent_swapped``) are left out: a target costs what
    its objective's step does.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CostsError(f"cannot read the step-cost table {path}: {e}") from None
    runs: list[dict[str, list[float]]] = [{}]
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # bench prints other lines too (warnings): only its JSON records count
        if isinstance(rec, dict) and rec.get("what") == "provenance" and any(runs[-1].values()):
            runs.append({})
        if not isinstance(rec, dict) or rec.get("what") != "train_step" or rec.get("variant", "fast") != "fast":
            continue
        ms = rec.get("ms_per_step")
        ok = isinstance(ms, (int, float)) and math.isfinite(ms) and ms > 0 and isinstance(rec.get("target"), str)
        if ok and not rec.get("tangent_swapped"):
            runs[-1].setdefault(rec["target"], []).append(float(ms))
    runs = [run for run in runs if FM_TARGET in run]
    if not runs:
        raise CostsError(
            f"{path} has no fused train_step record of target {FM_TARGET!r}: give the output of "
            "python -m trainer.bench --only step (JSON lines)"
        )
    per_target: dict[str, list[float]] = {}
    for run in runs:
        unit = statistics.median(run[FM_TARGET])
        for target, ms in run.items():
            per_target.setdefault(target, []).append(statistics.median(ms) / unit)
    return {t: statistics.median(v) for t, v in sorted(per_target.items())}


@dataclass(frozen=True)
class SimModel:
    surface: Surface
    costs: dict[str, float]  # target -> relative step cost
    target_of_objective: dict[str, str]  # named objective -> its target (a config names one or the other)
    base: dict  # the sweep's base keys (a fixed objective, the seed)
    steps: int
    eval_every: int
    eval_samples: int
    fid_samples: int
    train_s: float  # GPU-seconds of a flow-matching protocol trial's training
    fid_s: float  # GPU-seconds of one final FID (fid_samples images)
    scale: float  # real seconds per simulated GPU-second
    keys: tuple = field(default=())  # the searched keys the surface reads
    until: int = 0  # > 0: a trial ends at this evaluation step, its FID there its result (top-k's first rung)
    start: int = 0  # > 0: a trial continues from this step (top-k's second phase: it keeps its first rung)

    def target(self, params: dict) -> str:
        merged = {**self.base, **params}
        if merged.get("target"):
            return merged["target"]
        return self.target_of_objective.get(merged.get("objective", ""), FM_TARGET)

    def searched(self, params: dict) -> dict:
        return {k: params[k] for k in self.keys if k in params}

    def eval_steps(self) -> list[int]:
        inner = list(range(self.eval_every, self.steps, self.eval_every)) if self.eval_every else []
        return [s for s in (*inner, self.steps) if self.start < s <= (self.until or self.steps)]

    def segment_seconds(self, params: dict, start: int, end: int) -> tuple[float, float]:
        """GPU-seconds of training steps (start, end] and of the evaluation at ``end`` (the final FID at the last)."""
        train = (end - start) / self.steps * self.train_s * self.costs[self.target(params)]
        evaluate = self.fid_s if end >= self.steps else self.fid_s * self.eval_samples / self.fid_samples
        return train, evaluate

    def of_rep(self, rep: int) -> "SimModel":
        """Repetition ``rep``: its own landscape and search seed, the same space, costs and schedule."""
        return dataclasses.replace(self, surface=self.surface.of_rep(rep), base={**self.base, "seed": rep})

    def check_targets(self, targets) -> None:
        missing = sorted(set(targets) - set(self.costs))
        if missing:
            raise CostsError(
                f"the step-cost table has no measurement for target(s) {', '.join(missing)}; it has "
                f"{', '.join(self.costs)} (measure them with python -m trainer.bench --only step)"
            )


def build_model(
    space,
    *,
    rep: int,
    noise: float,
    costs_path: Path = COSTS_FILE,
    preset: str = "seed",
    seconds_per_trial: float = 1.0,
    trial_minutes: float = 8.0,
    fid_seconds: float = 45.0,
) -> SimModel:
    """The model of repetition ``rep`` (its landscape and the seed of its search) for ``space`` at ``preset``'s
    schedule of evaluations; a flow-matching trial's training sleeps ``seconds_per_trial``."""
    from sweep.simulate.surface import dims_of
    from trainer.config import from_flat
    from trainer.objectives import OBJECTIVES

    cfg = from_flat({"preset": preset})
    dims, drawn = dims_of(space)
    train_s = 60.0 * trial_minutes
    model = SimModel(
        surface=Surface(dims, seed=rep, noise=noise),
        costs=relative_costs(costs_path),
        target_of_objective={name: rec.target for name, rec in OBJECTIVES.items()},
        base={"preset": preset, "seed": rep},
        steps=cfg.steps,
        eval_every=cfg.eval_every,
        eval_samples=cfg.eval_samples,
        fid_samples=cfg.fid_samples,
        train_s=train_s,
        fid_s=fid_seconds,
        scale=seconds_per_trial / train_s,
        keys=tuple(d.key for d in dims),
    )
    model.check_targets({model.target(p) for p in [*drawn, *space.points]})
    return model


def on_landscape(model: SimModel, surrogate) -> SimModel:
    """``model`` with a landscape's surrogate (``sweep.simulate.surrogate``) for its surface: the surrogate's keys,
    and evaluations where the landscape has them (at its first step's fraction of the run, and its multiples)."""
    every = round(model.steps * surrogate.fractions[0]) if len(surrogate.fractions) > 1 else 0
    keys = tuple(d.key for d in surrogate.dims)
    return dataclasses.replace(model, surface=surrogate, keys=keys, eval_every=every)
