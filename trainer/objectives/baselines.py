"""The known objectives of the research protocol, as named bundles.

| name      | target    | ratio_fm           | alpha                                   | FID (protocol) |
|-----------|-----------|--------------------|-----------------------------------------|----------------|
| pureflow  | pureflow  | constant 1         | constant 0 (unused)                      | 86.21          |
| meanflow  | meanflow  | constant 0.75      | constant 0                               | 41.81          |
| alphaflow | alphaflow | constant 0.75      | sigmoid 1 -> 0, gamma 25, eta 0.005      | 48.62          |

Sources: ratio_fm 0.75 is MeanFlow's best "r != t" share of 25% (Geng et al.
2025, Table 1a); AlphaFlow's curriculum alpha(k) = 1 - sigmoid(gamma (k - k_mid)
/ (k_end - k_init)) with gamma 25 and clamp eta 0.005 is from Zhang et al. 2025
(here over the whole run: k_init 0, k_end 1), keeping MeanFlow's ratio_fm.
The FIDs are the seed task's reference table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.objectives.schedules import ScheduleSpec
from trainer.registry import Registry

OBJECTIVES = Registry("objective")


@dataclass(frozen=True)
class Objective:
    target: str
    ratio_fm: ScheduleSpec
    alpha: ScheduleSpec
    reference_fid: float | None = None  # the protocol's known FID, if any
    description: str = ""
    extra: dict = field(default_factory=dict)  # other flat config keys this objective sets (loss weighting ...)

    def flat(self) -> dict:
        """The objective as the flat config keys the trainer accepts."""
        out = {"target": self.target, **self.extra}
        for prefix, spec in (("ratio_fm", self.ratio_fm), ("alpha", self.alpha)):
            out[f"{prefix}.schedule"] = spec.name
            out.update({f"{prefix}.{k}": v for k, v in spec.params.items()})
        return out


def _register(name: str, obj: Objective) -> None:
    OBJECTIVES.register(name)(obj)


_register(
    "pureflow",
    Objective(
        "pureflow",
        ScheduleSpec("constant", {"value": 1.0}),
        ScheduleSpec("constant", {"value": 0.0}),
        86.21,
        "plain flow matching: every row has t_next = t",
    ),
)
_register(
    "meanflow",
    Objective(
        "meanflow",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("constant", {"value": 0.0}),
        41.81,
        "MeanFlow: JVP target on 25% of rows",
    ),
)
_register(
    "alphaflow",
    Objective(
        "alphaflow",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("sigmoid", {"start": 1.0, "end": 0.0, "gamma": 25.0, "eta": 0.005}),
        48.62,
        "AlphaFlow: discrete target, alpha curriculum 1 -> 0",
    ),
)

# The three objectives with a known FID at the protocol (the reference table).
KNOWN = [name for name, obj in OBJECTIVES.items() if obj.reference_fid is not None]

# Variants (trainer/objectives/variants.py) with the settings their papers use; no known FID yet.
_register(
    "splitmeanflow",
    Objective(
        "splitmeanflow",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("constant", {"value": 0.5}),
        None,
        "SplitMeanFlow: split at the interval's midpoint, plain MSE",
        {"adaptive_p": 0.0},
    ),
)
_register(
    "shortcut",
    Objective(
        "shortcut",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("constant", {"value": 0.0}),
        None,
        "Shortcut self-consistency: one jump = two half jumps, plain MSE",
        {"adaptive_p": 0.0},
    ),
)
_register(
    "imf",
    Objective(
        "imf",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("constant", {"value": 0.0}),
        None,
        "velocity-anchored MeanFlow: JVP along the model's own velocity",
    ),
)
_register(
    "ema_teacher",
    Objective(
        "ema_teacher",
        ScheduleSpec("constant", {"value": 0.75}),
        ScheduleSpec("sigmoid", {"start": 1.0, "end": 0.0, "gamma": 25.0, "eta": 0.005}),
        None,
        "AlphaFlow's target from an EMA teacher (rate 0.99)",
        {"teacher_decay": 0.99},
    ),
)
