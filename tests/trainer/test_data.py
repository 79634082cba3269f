import pytest
import torch

from trainer.data import DataError, DeviceImages, check_images, load_cifar10, synthetic_images


def test_missing_cifar_names_the_folder_and_the_file(tmp_path):
    with pytest.raises(DataError, match=rf"CIFAR-10 is not in {tmp_path}: place torchvision's cifar-10-python.tar.gz"):
        load_cifar10(str(tmp_path))  # MEANFLOW_OFFLINE=1 in tests: no download is tried


def test_unreadable_cifar_is_a_clear_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
        "batches.meta",
    ]:
        (folder / name).write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="could not be read|is not in"):
        load_cifar10(str(tmp_path))


def test_wrong_shape_is_rejected():
    with pytest.raises(DataError, match=r"expected uint8 images of shape \(N, 3, 32, 32\)"):
        check_images(torch.zeros(4, 3, 28, 28, dtype=torch.uint8), "x")
    with pytest.raises(DataError):
        DeviceImages(torch.zeros(4, 3, 32, 32), "cpu")  # float, not uint8


def test_synthetic_images_are_deterministic_and_batches_are_flipped_on_device():
    a, b = synthetic_images(64), synthetic_images(64)
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == (64, 3, 32, 32)
    data = DeviceImages(a[:1].repeat(200, 1, 1, 1), "cpu")
    x = data.batch(200, torch.Generator().manual_seed(0))
    assert x.min() >= -1 and x.max() <= 1
    ref = a[:1].float() / 127.5 - 1
    flipped = sum(torch.equal(row, ref[0].flip(-1)) for row in x)
    assert 60 < flipped < 140  # about half the rows are mirrored
