import gzip
import zipfile
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield


@pytest.fixture(autouse=True)
def _fixture_files_are_not_the_published_ones(monkeypatch, tmp_path_factory):
    """Tests build small data files in the publishers' formats; their checksums differ from the
    published ones, so checksum verification is off unless a test turns it on (tests/data/test_files.py)."""
    monkeypatch.setenv("HADAMRNN_UNVERIFIED_DATA", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def real_data():
    """``real_data("mnist", ...)``: the real data directory ($HADAMRNN_DATA, else ../shared/data)
    holding those folders, or a skip that names the path it tried."""

    def find(*folders: str) -> Path:
        root = Path(os.environ["HADAMRNN_DATA"]) if os.environ.get("HADAMRNN_DATA") else SHARED
        missing = [folder for folder in folders if not (root / folder).is_dir()]
        if missing:
            source = "$HADAMRNN_DATA" if os.environ.get("HADAMRNN_DATA") else "../shared/data (HADAMRNN_DATA unset)"
            pytest.skip(f"real data not found: {', '.join(str(root / f) for f in missing)} missing ({source})")
        return root

    return find


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path) -> Path:
    """Small MNIST IDX files under ``root/mnist`` (60 training and 12 test images); returns ``root``."""
    rng = np.random.default_rng(0)
    write_idx(root / "mnist/train-images-idx3-ubyte.gz", rng.integers(0, 256, (60, 28, 28)))
    write_idx(root / "mnist/train-labels-idx1-ubyte.gz", np.arange(60) % 10)
    write_idx(root / "mnist/t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 28, 28)))
    write_idx(root / "mnist/t10k-labels-idx1-ubyte.gz", np.arange(12) % 10)
    return root


@pytest.fixture
def mnist_dir(tmp_path):
    return write_mnist(tmp_path)


def _recording(rng, samples):
    return "\n".join(" ".join(f"{v:.6e}" for v in row) for row in rng.normal(size=(samples, 3))) + "\n"


def write_hapt(root: Path) -> Path:
    """A small HAPT_RawData.zip under ``root/hapt`` (three users, 700 samples each); returns ``root``."""
    rng = np.random.default_rng(0)
    (root / "hapt").mkdir(parents=True)
    # user 1 (train), 2 (test), 28 (validation); activity 7 (a transition) must be ignored
    labels = ["1 1 1 1 320", "1 1 7 321 400", "1 1 5 401 656", "2 2 3 1 192", "3 28 6 1 128"]
    with zipfile.ZipFile(root / "hapt/HAPT_RawData.zip", "w") as archive:
        for experiment, user in ((1, 1), (2, 2), (3, 28)):
            for sensor in ("acc", "gyro"):
                archive.writestr(f"RawData/{sensor}_exp{experiment:02d}_user{user:02d}.txt", _recording(rng, 700))
        archive.writestr("RawData/labels.txt", "\n".join(labels) + "\n")
    return root


@pytest.fixture
def hapt_dir(tmp_path):
    return write_hapt(tmp_path)
