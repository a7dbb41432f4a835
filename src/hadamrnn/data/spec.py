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

from ..options import option
from .arrays import Splits, TaskInfo
from .files import DataFile

__all__ = ["DataOptions", "DataSet"]


@dataclass
class DataOptions:
    """The ``data:`` keys of every data set."""

    name: str = "copy"
    batch_size: int = option(64, low=1, high=1_000_000)
    dir: str | None = None  # the data directory the run read its files from (written by train, absolute)


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
