"""In-memory data sets and the description of a task that the trainer needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from ..preprocess import InputTransform

__all__ = ["TaskInfo", "SequenceDataset", "ArrayDataset", "Splits"]


@dataclass(frozen=True)
class TaskInfo:
    """What a model and a loss need to know about a data set.

    ``input_size``: features per step (floats), or ``None`` for token ids with ``vocab_size`` tokens.
    ``loss``: ``"ce"`` (cross-entropy over ``num_classes``), ``"bce"`` (one logit, binary), or
    ``"ce_all"`` (cross-entropy at every step, read-out ``"all"``). ``transform``: the
    :class:`~hadamrnn.preprocess.InputTransform` from raw to model inputs, as a dict (``None``: the
    raw inputs are the model's); exported with the model.
    """

    name: str
    num_classes: int
    loss: Literal["ce", "bce", "ce_all"]
    input_size: int | None = None
    vocab_size: int | None = None
    metric: str = "accuracy"
    higher_is_better: bool = True
    transform: dict | None = None

    @property
    def output_size(self) -> int:
        return 1 if self.loss == "bce" else self.num_classes

    @property
    def readout(self) -> str:
        return "all" if self.loss == "ce_all" else "last"


class SequenceDataset(Protocol):
    def __len__(self) -> int: ...
    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]: ...


class ArrayDataset:
    """``x`` ``(N, T, d)`` raw features or ``(N, T)`` int64 tokens (pre-padded), ``y`` ``(N,)`` or
    ``(N, T)`` int64. A features ``transform`` turns raw batches into model inputs (float32)."""

    def __init__(self, x: Tensor, y: Tensor, transform: InputTransform | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        self.x, self.y = x, y
        self.transform = transform if transform is not None and transform.kind == "features" else None

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        x = self.x[indices]
        if self.transform is not None:
            x = torch.from_numpy(self.transform.features(x.numpy()))
        return x, self.y[indices]


@dataclass
class Splits:
    info: TaskInfo
    train: SequenceDataset
    val: SequenceDataset
    test: SequenceDataset

    def items(self):
        return (("train", self.train), ("val", self.val), ("test", self.test))
