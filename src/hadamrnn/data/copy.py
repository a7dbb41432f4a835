"""The copy task (Arjovsky et al. 2016 form): remember 10 symbols across a long blank stretch.

A sequence of total length ``T``: 10 symbols drawn from {1..8}, then blanks (0), the marker 9 at
position ``T - 11``, then 10 blanks during which the model must output the 10 symbols. Targets are
0 everywhere except the last 10 steps. Inputs are one-hot over the 10 input symbols (``d = 10``);
there are 9 output classes (0 = blank, 1..8). Samples are generated, never stored: sample ``i`` of
seed ``s`` is the same on every call and every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..options import SEED_MAX, option
from .arrays import Splits, TaskInfo
from .spec import DataOptions, DataSet

__all__ = ["CopyTask", "CopyOptions", "copy_baseline", "load_copy", "copy_info", "DATASETS"]

SYMBOLS = 10  # how many symbols to copy
ALPHABET = 8  # symbols are drawn from 1..8
MARKER = 9
INPUT_SIZE = 10  # one-hot over {0 blank, 1..8, 9 marker}
NUM_CLASSES = 9  # 0 blank, 1..8


def copy_baseline(length: int) -> float:
    """Cross-entropy per step of the best memoryless strategy: ``10 ln 8 / T`` (nats)."""
    return SYMBOLS * math.log(ALPHABET) / length


class CopyTask(torch.utils.data.Dataset):
    """``num_samples`` copy-task sequences of total length ``length``.

    Item ``i`` is ``(x, y)``: ``x`` float32 one-hot ``(T, 10)``, ``y`` int64 ``(T,)``.
    """

    def __init__(self, num_samples: int, length: int = 1000, seed: int = 0) -> None:
        if length < 2 * SYMBOLS + 1:
            raise ValueError(f"copy task length must be >= {2 * SYMBOLS + 1} "
                             f"(10 symbols, a marker, 10 answer steps), got {length}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples, self.length, self.seed = num_samples, length, seed

    def __len__(self) -> int:
        return self.num_samples

    def symbols(self, index: int) -> np.ndarray:
        """The 10 symbols of sample ``index`` (values in 1..8)."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample {index} out of range [0, {self.num_samples})")
        return np.random.default_rng([self.seed, index]).integers(1, ALPHABET + 1, SYMBOLS)

    def tokens(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Input symbol ids ``(T,)`` and targets ``(T,)`` of sample ``index``."""
        symbols = self.symbols(index)
        inputs = np.zeros(self.length, dtype=np.int64)
        targets = np.zeros(self.length, dtype=np.int64)
        inputs[:SYMBOLS] = symbols
        inputs[self.length - SYMBOLS - 1] = MARKER
        targets[self.length - SYMBOLS:] = symbols
        return inputs, targets

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, y = self.batch(torch.tensor([index]))
        return x[0], y[0]

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """One-hot inputs ``(B, T, 10)`` float32 and targets ``(B, T)`` int64 of the given samples."""
        pairs = [self.tokens(int(i)) for i in indices]
        inputs = torch.from_numpy(np.stack([p[0] for p in pairs]))
        targets = torch.from_numpy(np.stack([p[1] for p in pairs]))
        return torch.nn.functional.one_hot(inputs, INPUT_SIZE).float(), targets


def copy_info() -> TaskInfo:
    return TaskInfo("copy", num_classes=NUM_CLASSES, loss="ce_all", input_size=INPUT_SIZE,
                    metric="cross_entropy", higher_is_better=False)


def load_copy(length: int = 1000, train_samples: int = 512_000, val_samples: int = 2_000,
              test_samples: int = 10_000, seed: int = 0) -> Splits:
    """Train/val/test copy tasks from disjoint seeds (``seed``, ``seed + 1``, ``seed + 2``)."""
    return Splits(copy_info(), CopyTask(train_samples, length, seed), CopyTask(val_samples, length, seed + 1),
                  CopyTask(test_samples, length, seed + 2))


@dataclass
class CopyOptions(DataOptions):
    """The copy task's ``data:`` keys (the paper's setting by default)."""

    name: str = option("copy", choices=("copy",))
    length: int = option(1000, low=21, high=10_000_000)  # total sequence length T
    train_samples: int = option(512_000, low=1, high=10**9)  # sequences per epoch
    val_samples: int = option(2_000, low=1, high=10**9)
    test_samples: int = option(10_000, low=1, high=10**9)
    seed: int = option(0, low=0, high=SEED_MAX - 2)  # the data's seed (validation and test: seed + 1, seed + 2)


def _load(options: CopyOptions, root: Path) -> Splits:
    return load_copy(options.length, options.train_samples, options.val_samples, options.test_samples, options.seed)


DATASETS = {"copy": DataSet(CopyOptions, lambda options, root: copy_info(), _load)}
