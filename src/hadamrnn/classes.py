"""Class names: what a model's output indices are called (pure Python: every runtime reads them).

A data set whose labels are names (your own time series or text files) keeps them in its
:class:`~hadamrnn.data.TaskInfo`; every export carries them, and ``eval`` and ``predict`` print them
instead of indices. The generated C prints indices.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["MAX_CLASS_NAME", "check_class_names", "sorted_labels"]

MAX_CLASS_NAME = 200  # characters


def check_class_names(names, outputs: int) -> tuple[str, ...]:
    """``names`` as a tuple, after checking that they name the classes of a model of ``outputs``
    logits (one name per logit; a single logit is a binary model: the names of 0 and 1) with distinct
    non-empty strings of at most :data:`MAX_CLASS_NAME` characters on one line (``ValueError`` saying
    which is not)."""
    count = max(2, outputs)
    if not isinstance(names, (list, tuple)) or len(names) != count:
        raise ValueError(f"classes must be a list of {count} names, got {str(names)[:80]}")
    for name in names:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CLASS_NAME or "\n" in name or "\r" in name:
            raise ValueError(f"a class name is a string of 1 to {MAX_CLASS_NAME} characters on one line, "
                             f"got {str(name)[:80]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be distinct, got {str(list(names))[:120]}")
    return tuple(names)


def sorted_labels(labels: Iterable[str]) -> list[str]:
    """The distinct labels in class order: whole numbers in numeric order (so "10" follows "9"), then
    the others alphabetically."""
    def order(label: str) -> tuple:
        digits = label[1:] if label.startswith("-") else label
        return (0, int(label), "") if digits.isdigit() else (1, 0, label)

    return sorted(set(labels), key=order)
