import gzip

import numpy as np
import pytest
import torch

from hadamrnn.data import DataError, load_data
from hadamrnn.data.mnist import PERMUTATION_SEED, read_idx


def test_fixture_idx_files_parse_into_sequences_and_splits(mnist_dir):
    splits = load_data("smnist", mnist_dir)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50, 10, 12)
    x, y = splits.test.batch(torch.arange(12))
    assert x.shape == (12, 784, 1) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y.tolist() == [i % 10 for i in range(12)]
    raw = read_idx(mnist_dir / "mnist/t10k-images-idx3-ubyte.gz")
    assert torch.equal(x[3, :, 0], torch.from_numpy(raw[3].reshape(784) / 255.0).float())
    # train and val partition the training file
    train_y = torch.cat([splits.train.y, splits.val.y]).sort().values
    assert torch.equal(train_y, torch.from_numpy(np.sort(np.arange(60) % 10)))


def test_permuted_uses_the_reference_permutation_and_is_deterministic(mnist_dir):
    plain, permuted = load_data("smnist", mnist_dir), load_data("pmnist", mnist_dir)
    perm = np.random.RandomState(PERMUTATION_SEED).permutation(784)
    everything = torch.arange(12)
    assert torch.equal(permuted.test.batch(everything)[0][:, :, 0], plain.test.batch(everything)[0][:, perm, 0])
    assert torch.equal(permuted.test.x, plain.test.x)  # both hold raw pixels in raster order; the transform permutes
    again = load_data("pmnist", mnist_dir)
    assert torch.equal(again.train.batch(torch.arange(5))[0], permuted.train.batch(torch.arange(5))[0])
    assert torch.equal(again.val.y, permuted.val.y)


def test_missing_files_name_every_expected_file_checksum_and_url(tmp_path):
    with pytest.raises(DataError) as error:
        load_data("pmnist", tmp_path)
    message = str(error.value)
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "sha256", "https://", "--data-dir"):
        assert name in message


def test_truncated_file_is_reported_as_damaged(mnist_dir):
    path = mnist_dir / "mnist/train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DataError, match="truncated or corrupted"):
        load_data("smnist", mnist_dir)


def test_download_fails_with_a_clear_message_without_network(tmp_path, monkeypatch):
    import urllib.request

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DataError, match="download of https://.*failed.*copy the file by hand"):
        load_data("smnist", tmp_path, download=True)
    assert not any(tmp_path.rglob("*.part"))


def test_real_mnist_counts(real_data):
    root = real_data("mnist")
    splits = load_data("pmnist", root)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50_000, 10_000, 10_000)
    assert splits.test.y[0].item() == 7
    plain = load_data("smnist", root)
    pixels = torch.cat([plain.train.x, plain.val.x]).double()  # raw 0-255
    assert abs(float(pixels.mean()) - 33.318) < 0.01
