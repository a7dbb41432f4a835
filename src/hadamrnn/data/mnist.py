"""Sequential and permuted MNIST: one pixel per step (T = 784), values in [0, 1] (raw pixels / 255).

Reads the four IDX files (gzip) as distributed. Train/validation = 50,000/10,000 of the training
file, split by a fixed permutation (seed ``SPLIT_SEED``); test = the 10,000 test images. pMNIST
applies ``numpy.random.RandomState(92916).permutation(784)`` to the pixel order, the permutation
of the reference implementation, expRNN and scoRNN.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..options import option
from ..preprocess import InputTransform
from .arrays import ArrayDataset, Splits, TaskInfo
from .files import DataFile, damaged, require
from .spec import DataOptions, DataSet

__all__ = ["FILES", "INFO", "load_mnist", "read_idx", "PERMUTATION_SEED", "SPLIT_SEED", "DATASETS"]

URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # mirror of yann.lecun.com/exdb/mnist
FILES = [
    DataFile("mnist/train-images-idx3-ubyte.gz", "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971", URL + "train-images-idx3-ubyte.gz"),
    DataFile("mnist/train-labels-idx1-ubyte.gz", "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203", URL + "train-labels-idx1-ubyte.gz"),
    DataFile("mnist/t10k-images-idx3-ubyte.gz", "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be", URL + "t10k-images-idx3-ubyte.gz"),
    DataFile("mnist/t10k-labels-idx1-ubyte.gz", "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b", URL + "t10k-labels-idx1-ubyte.gz"),
]
PERMUTATION_SEED = 92916
SPLIT_SEED = 1234
VALIDATION = 10_000
INFO = {name: TaskInfo(name, num_classes=10, loss="ce", input_size=1) for name in ("smnist", "pmnist")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzip) as a uint8 array of its stated shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4:
        raise ValueError(f"{path.name}: too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path.name}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: header says {shape} = {int(np.prod(shape))} bytes, found {body.size}")
    return body.reshape(shape)


def load_mnist(root: Path, permuted: bool) -> Splits:
    name = "pmnist" if permuted else "smnist"
    paths = require(name, FILES, root)
    try:
        train_x, train_y, test_x, test_y = (read_idx(p) for p in paths)
    except (OSError, EOFError, ValueError, zlib.error, struct.error) as error:
        raise damaged(name, FILES, root, f"{type(error).__name__}: {error}") from error
    shapes = [a.shape for a in (train_x, train_y, test_x, test_y)]
    if (any(x.shape[1:] != (28, 28) for x in (train_x, test_x)) or any(y.ndim != 1 for y in (train_y, test_y))
            or len(train_x) != len(train_y) or len(test_x) != len(test_y)):
        raise damaged(name, FILES, root, f"the images files must hold (N, 28, 28) pixels and the labels files (N,) "
                                         f"labels of the same N; found {shapes} in the order listed below (images and "
                                         f"labels swapped?)")
    if max(train_y.max(initial=0), test_y.max(initial=0)) > 9:
        raise damaged(name, FILES, root, "the labels files hold labels above 9")

    order = tuple(int(i) for i in np.random.RandomState(PERMUTATION_SEED).permutation(784)) if permuted else None
    transform = InputTransform("features", offset=(0.0,), divisor=(255.0,), order=order)
    info = replace(INFO[name], transform=transform.to_dict())

    def raw(images: np.ndarray) -> torch.Tensor:  # pixels 0-255 in raster order; the transform scales and permutes
        return torch.from_numpy(images.reshape(len(images), 784, 1).copy())

    split = np.random.default_rng(SPLIT_SEED).permutation(len(train_x))
    validation = min(VALIDATION, len(train_x) // 6)  # tiny fixture files keep a proportional split
    val_idx, train_idx = split[:validation], split[validation:]
    x, y = raw(train_x), torch.from_numpy(train_y.astype(np.int64))
    return Splits(info, ArrayDataset(x[train_idx], y[train_idx], transform),
                  ArrayDataset(x[val_idx], y[val_idx], transform),
                  ArrayDataset(raw(test_x), torch.from_numpy(test_y.astype(np.int64)), transform))


@dataclass
class MNISTOptions(DataOptions):
    name: str = option("smnist", choices=("smnist", "pmnist"))


DATASETS = {name: DataSet(MNISTOptions, lambda options, root: INFO[options.name],
                          lambda options, root: load_mnist(root, permuted=options.name == "pmnist"), files=tuple(FILES))
            for name in ("smnist", "pmnist")}
