"""A report built from a real smoke sweep: every section, valid PNGs, self-contained HTML."""

import re

import pytest

from sweep.report import build, main as report_main
from sweep.run import main as run_main
from tests.helpers import sweep_args

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep_folder(ray_session, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    args = sweep_args(
        "alpha_schedules", results, "rep", 30, "--trials", "4", eval_every=15, eval_samples=64, fid_samples=128
    )
    assert run_main(args) == 0
    return results / "rep"


def test_report_has_every_section_and_valid_pngs(sweep_folder):
    page = build(sweep_folder).read_text()
    for section in (
        "Leaderboard",
        "Search progress",
        "Schedules of the top 5",
        "Intermediate FID",
        "Samples (64 each",
        "Parameter importances",
        "Cost",
        "Is the early signal worth pruning on?",
    ):
        assert f"<h2>{section}" in page, section
    assert 'class="meanflow"' in page  # the baseline is marked in the table
    assert "<th>spearman</th>" in page and "<th>kendall</th>" in page  # with its n, per intermediate step
    for name in ("leaderboard", "progress", "schedules", "curves", "importances", "cost"):
        png = sweep_folder / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG, name
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 8  # six figures and at least two sample grids (top trials and baselines)
    assert "http://" not in page and "https://" not in page  # opens with no network


def test_report_cli_errors_name_the_sweeps(sweep_folder, capsys):
    assert report_main(["--results-dir", str(sweep_folder.parent), "--name", "nope"]) == 2
    assert "sweeps there: rep" in capsys.readouterr().err
    assert report_main(["--results-dir", str(sweep_folder.parent)]) == 0  # the latest sweep by default


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_importances_come_from_the_storage_the_sweep_used(tmp_path, storage):
    import json

    import optuna

    from sweep.report_data import importances
    from sweep.study import study_storage

    folder = tmp_path / "s"
    folder.mkdir()
    saved = {"name": "s", "space": "baselines", "preset": "smoke", "base": {"preset": "smoke"}, "storage": storage}
    (folder / "sweep.json").write_text(json.dumps(saved))
    assert importances(folder) == ({}, "No Optuna study in this sweep folder.")
    study = optuna.create_study(study_name="s", storage=study_storage(storage, folder))
    lr = optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)
    for i, (x, fid) in enumerate([(1e-4, 5.0), (1e-3, 3.0), (3e-3, 2.5), (5e-5, 6.0)]):
        study.add_trial(optuna.trial.create_trial(params={"lr": x}, distributions={"lr": lr}, value=fid))
    found, why = importances(folder)
    assert why == "" and set(found) == {"lr"}
