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
