"""Every default and every named objective's setting says where it comes from, in the code and in docs/objectives.md."""

from pathlib import Path

from trainer.config import TrainConfig
from trainer.objectives import OBJECTIVES, TARGETS
from trainer.provenance import field_rows, listing, objective_rows

DOC = (Path(__file__).resolve().parents[2] / "docs" / "objectives.md").read_text()


def test_every_field_and_setting_has_a_source():
    rows = field_rows(TrainConfig(preset="seed")) + [r[1:] for r in objective_rows(OBJECTIVES)]
    missing = [r[0] for r in rows if r[-1] == "MISSING" or not r[-1]]
    assert not missing, missing
    assert all(rec.source for rec in TARGETS.values())


def test_the_docs_hold_the_lists_describe_prints():
    assert listing(objective_rows(OBJECTIVES)) in DOC
    assert listing(field_rows(TrainConfig(preset="seed"))) in DOC
