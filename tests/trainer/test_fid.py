"""clean-fid's real code path, offline: stand-in features and statistics on synthetic images."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import guard_network, standin_inception_file
from trainer.data import synthetic_images
from trainer.fid import FidScorer, frechet_distance, stats_of
from trainer.fid_cache import INCEPTION_FILE, STATS_FILE, FidCacheMissing, download_atomic
from trainer.fid_features import ResizePool, StandinFeatures, extract_features


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = rng.uniform(0.5, 2, 16), rng.uniform(0.5, 2, 16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_closed_form_for_rotated_commuting_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    s1, s2 = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 8)
    c1, c2 = q @ np.diag(s1) @ q.T, q @ np.diag(s2) @ q.T
    expected = np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(np.zeros(8), c1, np.zeros(8), c2) == pytest.approx(expected, rel=1e-8)


def test_scipy_is_a_version_that_clean_fid_works_with():
    import scipy

    major, minor = (int(x) for x in scipy.__version__.split(".")[:2])
    assert (major, minor) < (1, 18), "clean-fid 0.1.35 passes disp=False to sqrtm, removed in SciPy 1.18"


@pytest.fixture(scope="module")
def standin():
    scorer = FidScorer("standin", "cpu", workers=0)
    yield scorer
    scorer.close()


def test_standin_scores_same_distribution_near_zero_and_a_shift_clearly_higher(standin):
    same = standin.score_images(synthetic_images(512, seed=99))
    shifted_images = (synthetic_images(512, seed=99).int() // 2 + 100).to(torch.uint8)
    shifted = standin.score_images(shifted_images)
    assert same < 0.05 * shifted and shifted > 1.0, (same, shifted)
    assert standin.score_images(synthetic_images(512, seed=99)) == same  # identical across runs


def test_parallel_resize_gives_the_serial_clean_fid_result():
    """Our pooled path vs clean-fid's own get_model_features (one image at a time in-process)."""
    from cleanfid.fid import get_model_features

    images = synthetic_images(96, seed=5)
    model = StandinFeatures()
    batches = iter(images.split(32))
    serial = get_model_features(
        lambda z: next(batches),
        model,
        mode="clean",
        z_dim=1,
        num_gen=96,
        batch_size=32,
        device=torch.device("cpu"),
        verbose=False,
    )
    with ResizePool(2) as pool:
        parallel = extract_features(images, model, "cpu", pool, batch_size=20)
    ref = stats_of(extract_features(synthetic_images(96, seed=6), model, "cpu"))
    np.testing.assert_allclose(parallel, serial, rtol=0, atol=1e-5)
    assert abs(frechet_distance(*stats_of(parallel), *ref) - frechet_distance(*stats_of(serial), *ref)) < 1e-6


def test_missing_cache_names_the_file_and_folder(tmp_path):
    with pytest.raises(FidCacheMissing, match=f"{STATS_FILE} is missing from the FID cache {tmp_path}"):
        FidScorer("clean-fid", "cpu", cache=str(tmp_path), workers=0)
    out = subprocess.run(
        [sys.executable, "-m", "trainer.fid", "check", "--fid-cache", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 2 and "is missing from the FID cache" in out.stderr and "Traceback" not in out.stderr


def test_present_cache_is_used_without_network(tmp_path, monkeypatch):
    standin_inception_file(tmp_path)
    np.savez(tmp_path / STATS_FILE, mu=np.zeros(2048), sigma=np.eye(2048))
    guard_network(monkeypatch)
    scorer = FidScorer("clean-fid", "cpu", cache=str(tmp_path), workers=0)  # clean-fid's InceptionV3W, download=False
    feats = extract_features(synthetic_images(4), scorer.model, "cpu")
    assert feats.shape == (4, 2048)
    assert scorer.kind(50_000, 10) == "clean-fid/cifar10-train-32/50k/euler10"
    assert scorer.kind(5_000, 10) == "clean-fid/cifar10-train-32/5k/euler10"


def test_download_is_atomic(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    dest = tmp_path / "cache" / INCEPTION_FILE
    download_atomic(src.as_uri(), dest)
    assert dest.read_bytes() == b"x" * 1000
    with pytest.raises(OSError):
        download_atomic((tmp_path / "absent").as_uri(), tmp_path / "cache" / STATS_FILE)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [INCEPTION_FILE]  # no partial file left
