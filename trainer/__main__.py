"""Run one trial without Ray: ``python -m trainer --objective meanflow --preset smoke``.

Flags map onto ``TrainConfig`` fields; ``--set KEY=VALUE`` reaches any other
field or schedule parameter (``--set alpha.gamma=10``). Writes
``<out-dir>/result.json``. ``--describe`` prints the model size and every
registered target, schedule, objective and preset.
"""

from __future__ import annotations

import argparse
import json
import sys

from trainer.cli import Parser, ctrl_c_handled, interrupted, parse_sets, usage_error, writable_dir

from trainer.config import PRESETS
from trainer.model import MODEL_SIZES
from trainer.objectives import OBJECTIVES, SCHEDULES, TARGETS


def parse(argv=None) -> argparse.Namespace:
    p = Parser(prog="python -m trainer", description="Train and score one objective.")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="meanflow")
    p.add_argument("--preset", choices=list(PRESETS), default="smoke")
    p.add_argument("--target", choices=list(TARGETS), help="override the objective's target")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device")
    p.add_argument("--data-dir")
    p.add_argument("--fid-cache")
    p.add_argument("--out-dir", default="results/single")
    p.add_argument("--no-compile", action="store_true", help="run the step eagerly")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key")
    p.add_argument("--describe", action="store_true", help="print the model size and the registries, then exit")
    return p.parse_args(argv)


def describe() -> str:
    from trainer.model import SmallDiT

    lines = []
    for name, cfg in MODEL_SIZES.items():
        n = SmallDiT(cfg).num_params()
        lines.append(
            f"model {name:6s} hidden {cfg.hidden} depth {cfg.depth} heads {cfg.heads} patch {cfg.patch}: "
            f"{n:,} parameters ({n / 1e6:.2f}M)"
        )
    from trainer.config import PROTOCOL_VERSION, TrainConfig
    from trainer.provenance import field_rows, listing, objective_rows

    lines.append("\ntargets: name, uses alpha / EMA teacher / fp32 / clamps, what, [source]")
    for name, rec in TARGETS.items():
        flags = "/".join("yes" if f else "no" for f in (rec.uses_alpha, rec.teacher, rec.fp32, rec.clamps))
        lines.append(f"  {name:14s} {flags:15s} {rec.description} [{rec.source}]")
    lines.append("schedules:  " + ", ".join(SCHEDULES))
    lines.append("objectives: " + ", ".join(f"{k} (FID {o.reference_fid})" for k, o in OBJECTIVES.items()))
    lines.append("presets:    " + ", ".join(PRESETS))
    lines.append(f"\nprotocol version {PROTOCOL_VERSION}; named objectives, the settings each sets and where from:\n")
    lines.append(listing(objective_rows(OBJECTIVES)))
    lines.append("\nconfig defaults at the protocol (preset seed; what an objective leaves alone) and where from:\n")
    lines.append(listing(field_rows(TrainConfig(preset="seed"))))
    return "\n".join(lines)


def flat_config(args: argparse.Namespace) -> dict:
    flat = {"objective": args.objective, "preset": args.preset, "out_dir": args.out_dir}
    for key in ("target", "steps", "batch_size", "seed", "device", "data_dir", "fid_cache"):
        if getattr(args, key) is not None:
            flat[key] = getattr(args, key)
    if args.no_compile:
        flat["compile"] = False
    flat.update(parse_sets(args.set))
    return flat


def main(argv=None) -> int:
    args = parse(argv)
    if args.describe:
        print(describe())
        return 0
    try:
        with ctrl_c_handled():
            return run(args)
    except KeyboardInterrupt:
        return interrupted()


def run(args: argparse.Namespace) -> int:
    from trainer.config import from_flat
    from trainer.data import DataError
    from trainer.fid_cache import FidCacheMissing
    from trainer.runtime import resolve_device

    try:
        cfg = from_flat(flat_config(args))  # --set errors are ValueErrors too
        problem = writable_dir(cfg.out_dir, "--out-dir") if cfg.out_dir else None
        if problem:
            raise ValueError(problem)
        resolve_device(cfg.device)
    except ValueError as e:  # UnknownName is a ValueError too; the data and FID cache are opened by the trial
        return usage_error(str(e))
        return usage_error(str(e))
    from trainer.model import SmallDiT
    from trainer.trial import train

    print(
        f"SmallDiT[{cfg.model}]: {SmallDiT(MODEL_SIZES[cfg.model]).num_params():,} parameters; "
        f"target {cfg.target}, {cfg.steps} steps at batch {cfg.batch_size}",
        flush=True,
    )
    try:
        result = train(cfg, report=lambda m: print(json.dumps(m), flush=True))
    except (DataError, FidCacheMissing, ValueError) as e:  # a missing dataset, a damaged checkpoint, ...
        return usage_error(str(e))
    print(
        json.dumps({k: result.row()[k] for k in ("final_fid", "fid_kind", "final_mse", "wall_seconds", "config_hash")})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
