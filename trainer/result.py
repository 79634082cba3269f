"""What a trial measured: one typed record, returned by ``Trial.finish``.

Each field is one column of a results table (a ``per_nfe`` field one column per
extra step count, ``final_fid_nfe1`` ...; a ``kept`` field goes to result.json
only). The sweep's tables derive their measurement columns, and which of them
are text and which numbers, from this record: a new measurement is one field
here. What a trial *is* lives in ``TrainConfig``; a results row holds its keys
under a ``config.`` prefix, so the two never share a name.
"""

import dataclasses
import json
import typing
from dataclasses import dataclass, field

PER_NFE = {"column": "per_nfe"}  # a dict {step count: value}: one column "<name><k>" each
KEPT = {"column": "kept"}  # result.json only (a list: not one value per row)


@dataclass(frozen=True)
class TrialResult:
    final_fid: float  # FID at the config's sample_steps (the protocol's: 10 Euler steps)
    fid_kind: str  # what the FID is: extractor / reference / samples / sampler; rankings never mix kinds
    fid_samples: int  # samples the final FID was computed on
    best_intermediate_fid: float | None  # lowest FID at an evaluation step (None: no intermediate FIDs)
    final_loss: float  # the weighted loss, averaged over the last 1% of steps
    final_mse: float  # the unweighted squared error, same steps
    final_fm_mse: float  # the squared error of flow-matching rows (t_next = t: a fixed target v), same steps
    train_seconds: float  # training steps only, summed over every attempt of a restored trial
    eval_seconds: float  # intermediate FIDs
    fid_seconds: float  # every final FID (sampling included)
    wall_seconds: float  # the three above
    step_ms: float  # train_seconds per step
    gpu: str  # the device the trial ran on: the GPU's name, or the CPU
    config_hash: str  # TrainConfig.config_hash(): what the config is, without seed and where it runs
    protocol_version: int  # which defaults produced the result (trainer.config.PROTOCOL_VERSION)
    versions: str  # library versions, JSON
    final_fid_nfe: dict[int, float] = field(default_factory=dict, metadata=PER_NFE)  # FID per extra sampler step count
    fid_kind_nfe: dict[int, str] = field(default_factory=dict, metadata=PER_NFE)
    intermediate: list = field(default_factory=list, metadata=KEPT)  # the metrics of every evaluation step
    loss_curve: list = field(default_factory=list, metadata=KEPT)  # [step, loss, mse, fm_mse] per 1% of the run

    def row(self) -> dict:
        """The record as results columns: ``{column: value}``."""
        out = {}
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), f.metadata.get("column")
            if kind == "per_nfe":
                out.update({f"{f.name}{k}": v for k, v in value.items()})
            elif kind != "kept":
                out[f.name] = value
        return out

    def to_json(self) -> dict:
        """The columns and the kept fields (result.json): ``from_row`` reads it back."""
        kept = [f.name for f in dataclasses.fields(self) if f.metadata == KEPT]
        return {**self.row(), **{name: getattr(self, name) for name in kept}}

    @classmethod
    def from_row(cls, row: dict) -> "TrialResult":
        """A record back from its columns (as ``row`` wrote them, or as a JSON file holds them)."""
        kwargs = {}
        for f in dataclasses.fields(cls):
            kind = f.metadata.get("column")
            if kind == "per_nfe":
                kwargs[f.name] = {int(k[len(f.name) :]): v for k, v in row.items() if _is_nfe(k, f.name)}
            elif kind == "kept":
                kwargs[f.name] = list(row.get(f.name, []))
            else:
                kwargs[f.name] = row[f.name]
        return cls(**kwargs)


def _is_nfe(key: str, name: str) -> bool:
    return key.startswith(name) and key[len(name) :].isdigit()


def column_types() -> dict[str, type]:
    """Each fixed column's type (float, int or str); per-NFE columns are in ``per_nfe_types``."""
    hints = typing.get_type_hints(TrialResult)
    out = {}
    for f in dataclasses.fields(TrialResult):
        if not f.metadata.get("column"):
            out[f.name] = next(
                t for t in (str, int, float) if t is hints[f.name] or t in typing.get_args(hints[f.name])
            )
    return out


def per_nfe_types() -> dict[str, type]:
    """The prefix of each per-NFE column family (``final_fid_nfe`` -> ``final_fid_nfe1`` ...) and its values' type."""
    hints = typing.get_type_hints(TrialResult)
    return {f.name: typing.get_args(hints[f.name])[1] for f in dataclasses.fields(TrialResult) if f.metadata == PER_NFE}


def versions_json(versions: dict) -> str:
    return json.dumps(versions, sort_keys=True)
