"""Data files as a hostile world delivers them: altered, corrupted, not what was published."""

import random

import pytest

from hadamrnn.data import DataError, load_data, mnist
from hadamrnn.data.files import DataFile, sha256


def _publish_fixture(monkeypatch, root):
    """Pretend the fixture MNIST files are the published ones (their checksums become the expected)."""
    published = [DataFile(f.path, sha256(root / f.path), f.url) for f in mnist.FILES]
    monkeypatch.setattr(mnist, "FILES", published)
    monkeypatch.delenv("HADAMRNN_UNVERIFIED_DATA")


def test_files_that_differ_from_the_published_ones_are_refused_with_the_way_out(mnist_dir, monkeypatch):
    monkeypatch.delenv("HADAMRNN_UNVERIFIED_DATA")
    with pytest.raises(DataError, match=r"does not match its published SHA-256 .* set HADAMRNN_UNVERIFIED_DATA=1"):
        load_data("smnist", mnist_dir)
    monkeypatch.setenv("HADAMRNN_UNVERIFIED_DATA", "1")
    assert len(load_data("smnist", mnist_dir).test) == 12


def test_a_verified_file_is_hashed_once_until_it_changes(mnist_dir, monkeypatch):
    import hadamrnn.data.files as files

    _publish_fixture(monkeypatch, mnist_dir)
    load_data("smnist", mnist_dir)
    hashed = []
    monkeypatch.setattr(files, "sha256", lambda path: hashed.append(path) or sha256(path))
    load_data("smnist", mnist_dir)
    assert hashed == []  # remembered by path, size and modification time
    images = mnist_dir / "mnist/t10k-images-idx3-ubyte.gz"
    data = bytearray(images.read_bytes())
    data[-5] ^= 0xFF
    images.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match its published SHA-256"):
        load_data("smnist", mnist_dir)
    assert [p.name for p in hashed] == ["t10k-images-idx3-ubyte.gz"]


def test_a_file_altered_and_restored_with_touch_r_is_verified_again(mnist_dir, monkeypatch):
    """Size and modification time can be put back (`touch -r`); the inode's status-change time cannot."""
    import os

    _publish_fixture(monkeypatch, mnist_dir)
    load_data("smnist", mnist_dir)
    labels = mnist_dir / "mnist/t10k-labels-idx1-ubyte.gz"
    before = labels.stat()
    data = bytearray(labels.read_bytes())
    data[-5] ^= 0xFF  # same size
    labels.write_bytes(bytes(data))
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))  # what touch -r does
    assert (labels.stat().st_size, labels.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(DataError, match="does not match its published SHA-256"):
        load_data("smnist", mnist_dir)


def test_swapped_mnist_images_and_labels_are_named(mnist_dir):
    images, labels = mnist_dir / "mnist/t10k-images-idx3-ubyte.gz", mnist_dir / "mnist/t10k-labels-idx1-ubyte.gz"
    swapped = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(swapped)
    with pytest.raises(DataError, match="images and labels swapped"):
        load_data("smnist", mnist_dir)


def test_300_random_corruptions_of_an_idx_file_give_a_data_error_or_load(mnist_dir):
    images = mnist_dir / "mnist/t10k-images-idx3-ubyte.gz"
    original = images.read_bytes()
    rng = random.Random(0)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(data))
            data[position] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        images.write_bytes(bytes(data))
        try:
            load_data("smnist", mnist_dir)
            outcomes["loaded"] += 1
        except DataError as error:
            assert "cannot read the files" in str(error)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100, outcomes


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_archives_and_text_files_give_data_errors(tmp_path, damage):
    """HAPT zip, IMDB tar.gz and GLUE tsv files that are not what their names say."""
    from hadamrnn.data.text import GLUE_FILES, IMDB_FILES
    from hadamrnn.data.har import FILES as HAR_FILES

    for name, files in (("har6", HAR_FILES), ("imdb", IMDB_FILES), ("sst2", GLUE_FILES["sst2"])):
        for f in files:
            path = tmp_path / name / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4 if damage == "garbage" else b"\x1f\x8b")
        if name == "sst2":
            (tmp_path / name / "bert-base-uncased/vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\n[UNK]\nok\n")
        with pytest.raises(DataError, match="cannot read the files"):
            load_data(name, tmp_path / name)


def test_the_real_files_match_their_published_checksums(real_data, monkeypatch):
    root = real_data("mnist", "hapt")
    monkeypatch.delenv("HADAMRNN_UNVERIFIED_DATA")
    assert len(load_data("smnist", root).test) == 10_000
    assert len(load_data("har6", root).test) > 2000
