"""In-memory data sets and the description of a task that the trainer needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from ..classes import check_class_names
from ..preprocess import InputTransform

__all__ = ["TaskInfo", "SequenceDataset", "ArrayDataset", "Splits", "MAX_CLASSES", "MAX_FEATURES", "MAX_VOCABULARY"]

# The largest tasks a model is built for (the same limits as a .hrnn file's header).
MAX_CLASSES = 2**16
MAX_FEATURES = 2**16
MAX_VOCABULARY = 2**24


@dataclass(frozen=True)
class TaskInfo:
    """What a model and a loss need to know about a data set.

    ``input_size``: features per step (floats), or ``None`` for token ids with ``vocab_size`` tokens.
    ``loss``: ``"ce"`` (cross-entropy over ``num_classes``), ``"bce"`` (one logit, binary), or
    ``"ce_all"`` (cross-entropy at every step, read-out ``"all"``). ``transform``: the
    :class:`~hadamrnn.preprocess.InputTransform` from raw to model inputs, as a dict (``None``: the
    raw inputs are the model's); exported with the model. ``classes``: the name of each class in index
    order (two for ``"bce"``: the names of 0 and 1), or ``None`` where the classes are their indices;
    exported with the model, and printed by ``eval`` and ``predict``.
    """

    name: str
    num_classes: int
    loss: Literal["ce", "bce", "ce_all"]
    input_size: int | None = None
    vocab_size: int | None = None
    metric: str = "accuracy"
    higher_is_better: bool = True
    transform: dict | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        def count(value, what: str, high: int, optional: bool = False) -> None:
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ValueError(f"{what} must be a whole number in [1, {high}], got {str(value)[:40]}")

        if not isinstance(self.name, str) or self.loss not in ("ce", "bce", "ce_all"):
            raise ValueError(f"a task needs a name and a loss 'ce', 'bce' or 'ce_all', got {str(self.loss)[:40]}")
        count(self.num_classes, "num_classes", MAX_CLASSES)
        count(self.input_size, "input_size", MAX_FEATURES, optional=True)
        count(self.vocab_size, "vocab_size", MAX_VOCABULARY, optional=True)
        if (self.input_size is None) == (self.vocab_size is None):
            raise ValueError("a task has either input_size (features) or vocab_size (token ids)")
        if self.metric not in ("accuracy", "cross_entropy") or not isinstance(self.higher_is_better, bool):
            raise ValueError(f"metric must be 'accuracy' or 'cross_entropy', got {str(self.metric)[:40]}")
        if self.transform is not None and not isinstance(self.transform, dict):
            raise ValueError("transform must be a mapping or null")
        if self.classes is not None:
            check_class_names(self.classes, self.output_size)

    @classmethod
    def from_dict(cls, values) -> "TaskInfo":
        """A task description read from a file, every field checked (``ValueError`` naming it)."""
        if not isinstance(values, dict):
            raise ValueError(f"a task description is a mapping, got {type(values).__name__}")
        unknown = sorted(map(str, set(values) - set(cls.__dataclass_fields__)))
        if unknown:
            raise ValueError(f"unknown task field(s) {unknown[:5]}")
        if isinstance(values.get("classes"), list):  # JSON has no tuples
            values = {**values, "classes": tuple(values["classes"])}
        try:
            return cls(**values)
        except TypeError as error:  # a required field missing
            raise ValueError(str(error)) from None

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
