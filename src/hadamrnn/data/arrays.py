"""In-memory data sets and the description of a task that the trainer needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from torch import Tensor

__all__ = ["TaskInfo", "SequenceDataset", "ArrayDataset", "Splits"]


@dataclass(frozen=True)
class TaskInfo:
    """What a model and a loss need to know about a data set.

    ``input_size``: features per step (floats), or ``None`` for token ids with ``vocab_size`` tokens.
    ``loss``: ``"ce"`` (cross-entropy over ``num_classes``), ``"bce"`` (one logit, binary), or
    ``"ce_all"`` (cross-entropy at every step, read-out ``"all"``).
    """

    name: str
    num_classes: int
    loss: Literal["ce", "bce", "ce_all"]
    input_size: int | None = None
    vocab_size: int | None = None
    metric: str = "accuracy"
    higher_is_better: bool = True

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
    """``x`` ``(N, T, d)`` float32 or ``(N, T)`` int64 tokens, ``y`` ``(N,)`` or ``(N, T)`` int64."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[indices], self.y[indices]


@dataclass
class Splits:
    info: TaskInfo
    train: SequenceDataset
    val: SequenceDataset
    test: SequenceDataset

    def items(self):
        return (("train", self.train), ("val", self.val), ("test", self.test))
