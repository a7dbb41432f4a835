"""What a data set is to the rest of hadamrnn: its ``data:`` keys and how to describe and load it.

A data set (or a file format) is one module of ``hadamrnn.data`` that defines a :class:`DataSet`:
an options dataclass (the ``data:`` keys it takes, validated, with documented defaults; every set
takes :class:`DataOptions`' ``name``, ``batch_size`` and ``dir``), ``info`` and ``load``. The
registry by name is ``hadamrnn.data.DATASETS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..options import option
from .arrays import Splits, TaskInfo
from .files import DataFile

__all__ = ["DataOptions", "DataSet", "SplitFilesOptions", "DataFileError", "file_error", "held_out"]

SPLIT_SEED = 1234  # the validation rows held out of a training file


@dataclass
class DataOptions:
    """The ``data:`` keys of every data set."""

    name: str = "copy"
    batch_size: int = option(64, low=1, high=1_000_000)
    dir: str | None = None  # the data directory the run read its files from (written by train, absolute)


@dataclass
class SplitFilesOptions(DataOptions):
    """The ``data:`` keys of a set read from your own files, one per split."""

    train: str | None = None
    test: str | None = None
    val: str | None = None  # default: 10% of train, held out by a fixed seed (:func:`held_out`)


class DataFileError(ValueError):
    """A file of yours that cannot be read; the message names the file and, where it can, the line."""


def file_error(path: Path, line: int | None, message: str) -> DataFileError:
    return DataFileError(f"{path}{f', line {line}' if line is not None else ''}: {message}")


def held_out(path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held)``: the row indices of a training file of ``count`` rows that train (in order)
    and the 10% (at least one, in a fixed random order) held out for validation."""
    if count < 2:
        raise file_error(path, None, f"{count} row(s): too few to hold out a validation split; give data.val")
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    held = order[:max(1, count // 10)]
    return np.setdiff1d(np.arange(count), held), held


@dataclass(frozen=True)
class DataSet:
    """A data set by name.

    ``options``: its ``data:`` keys (a :class:`DataOptions` subclass). ``info(options, root)``: its
    :class:`TaskInfo`, reading as little as it can; ``load(options, root)``: its :class:`Splits`;
    ``root`` is the data directory. ``files``: what ``--download`` fetches into ``root`` (none for
    generated data and your own files). ``paths``: its options that name files, made absolute when
    a run starts so that ``eval`` and ``--resume`` find them from anywhere, except the ``keywords``
    such an option also takes (``tokenizer: train``). ``prepare(options, run_dir, write)``: the options
    a new run fixes in its directory before it reads the data (text: the tokenizer it learns, saved
    as a file that resume and eval then read); ``write`` is false in all processes but the first of a
    multi-process run, which find the first one's file."""

    options: type[DataOptions]
    info: Callable[[DataOptions, Path], TaskInfo]
    load: Callable[[DataOptions, Path], Splits]
    files: tuple[DataFile, ...] = ()
    paths: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    prepare: Callable[[DataOptions, Path, bool], DataOptions] | None = None
