"""Data sets for the paper's benchmarks and your own, by name.

Each data set or file format is one module of this package that defines a
:class:`~hadamrnn.data.spec.DataSet` (its ``data:`` keys, ``info`` and ``load``); :data:`DATASETS`
is the registry by name, as ``hadamrnn.models.FAMILIES`` is for model families.
``load_data(name, data_dir, download, **options)`` returns :class:`Splits` (train / val / test and
the :class:`TaskInfo` a model needs).

| name | module | what |
|---|---|---|
| ``copy`` | ``data.copy`` | the copy task, generated (``length``, ``*_samples``, ``seed``) |
| ``smnist``, ``pmnist`` | ``data.mnist`` | sequential and permuted MNIST, one pixel per step |
| ``imdb``, ``sst2``, ``qqp`` | ``data.text`` | reviews and GLUE sentences as token ids |
| ``har2``, ``har6`` | ``data.har`` | UCI HAPT windows of 9 sensor channels |
| ``npz`` | ``data.npz`` | your arrays in one ``.npz`` file (``path``) |
| ``timeseries`` | ``data.timeseries`` | your series in UEA/UCR ``.ts`` or long-format ``.csv`` files (``train``, ``test``, ``val``) |
| ``text`` | ``data.textfiles`` | your texts and labels in ``.csv`` or ``.tsv`` files, tokenized by a vocabulary or one learnt |
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from ..options import OptionError, parse_options, short_repr
from . import copy, har, mnist, npz, text, textfiles, timeseries
from .arrays import ArrayDataset, Splits, TaskInfo
from .copy import CopyTask, copy_baseline
from .files import DataError, data_dir, download as download_files
from .spec import DataOptions, DataSet

__all__ = ["DATASETS", "DataOptions", "DataSet", "data_options", "load_data", "task_info", "summarize", "baseline",
           "dump", "CopyTask", "copy_baseline", "Splits", "TaskInfo", "ArrayDataset", "DataError", "data_dir"]

DATASETS: dict[str, DataSet] = {**copy.DATASETS, **mnist.DATASETS, **text.DATASETS, **har.DATASETS, **npz.DATASETS,
                                **timeseries.DATASETS, **textfiles.DATASETS}


def data_options(values: dict | None = None) -> DataOptions:
    """The ``data:`` options of the set ``values["name"]`` (default ``copy``), every key checked: a key
    the set does not take is an error naming the keys it takes. A key set to null is not set (run
    configs written before each set had keys of its own list every key, null where unused): it keeps
    its default."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        return parse_options(DataOptions, values, "data")  # the error for a non-mapping
    name = values.get("name", "copy")
    if not isinstance(name, str) or name not in DATASETS:
        raise OptionError(f"data.name: {short_repr(name)} is not a data set; choose one of {list(DATASETS)}")
    options = DATASETS[name].options
    try:
        return parse_options(options, {k: v for k, v in values.items() if v is not None}, "data")
    except OptionError as error:
        if "unknown key" in str(error):
            raise OptionError(f"{error} (data set {name!r} takes no other keys)") from None
        raise


def _options(data: str | DataOptions, options: dict) -> DataOptions:
    if isinstance(data, DataOptions):
        if options:
            raise TypeError("pass the data set's options either as DataOptions or as keywords, not both")
        return data
    return data_options({"name": data, **{k: str(v) if isinstance(v, Path) else v for k, v in options.items()}})


def task_info(data: str | DataOptions, data_dir_path: str | Path | None = None, **options) -> TaskInfo:
    """What a model needs to know about a data set (a name and its options as keywords, or
    :class:`DataOptions`), reading as little as it can (an npz file is read whole)."""
    options = _options(data, options)
    return DATASETS[options.name].info(options, data_dir(data_dir_path))


def load_data(data: str | DataOptions, data_dir_path: str | Path | None = None, download: bool = False,
              **options) -> Splits:
    """Load a data set: a name and its ``data:`` options as keywords (``load_data("copy", length=200)``),
    or :class:`DataOptions`. Files are read from ``data_dir_path`` (else ``$HADAMRNN_DATA``, else
    ``./data``); ``download`` fetches those missing."""
    options = _options(data, options)
    dataset, root = DATASETS[options.name], data_dir(data_dir_path)
    if download and dataset.files:
        download_files(options.name, list(dataset.files), root)
    return dataset.load(options, root)


def summarize(splits: Splits, max_classes: int = 20) -> dict:
    """Per split: samples, sample shape, sequence length, class counts by name where the classes have
    names (at most ``max_classes`` shown)."""
    summary = {"name": splits.info.name, "num_classes": splits.info.num_classes, "loss": splits.info.loss,
               "metric": splits.info.metric, "splits": {}}
    if splits.info.vocab_size is not None:
        summary["vocab_size"] = splits.info.vocab_size
    classes = splits.info.classes
    name = (lambda k: classes[k]) if classes is not None else str  # noqa: E731
    for split, dataset in splits.items():
        x, y = dataset.batch(torch.arange(min(len(dataset), 1)))
        if isinstance(dataset, ArrayDataset):
            labels = dataset.y
        else:  # generated: count classes on a sample of up to 1000 sequences
            labels = dataset.batch(torch.arange(min(len(dataset), 1000)))[1]
        counts = Counter(labels.flatten().tolist())
        summary["splits"][split] = {
            "samples": len(dataset),
            "sample_shape": list(x.shape[1:]),
            "sequence_length": int(x.shape[1]),
            "class_counts": {name(k): counts[k] for k in sorted(counts)[:max_classes]},
        }
    return summary


def baseline(splits: Splits) -> dict:
    """What a model that learned nothing from its inputs scores on the test split.

    Copy task: the memoryless cross-entropy ``10 ln 8 / T`` per step. Classification: the accuracy
    of always predicting the test split's most frequent class. Returns ``baseline_metric`` and a
    short ``baseline`` description.
    """
    test = splits.test
    if isinstance(test, CopyTask):
        return {"baseline_metric": copy_baseline(test.length), "baseline": "memoryless cross-entropy 10 ln 8 / T"}
    labels = test.y if isinstance(test, ArrayDataset) else test.batch(torch.arange(min(len(test), 1000)))[1]
    counts = Counter(labels.flatten().tolist())
    top, size = max(counts.values()), sum(counts.values())
    value = top / size if splits.info.metric == "accuracy" else None
    return {"baseline_metric": value, "baseline": "accuracy of always predicting the most frequent class"}


def dump(dataset, info: TaskInfo, inputs_path: Path, labels_path: Path, chunk: int = 256) -> int:
    """Write a split as ``hadamrnn predict`` reads it, one sequence per line: the raw inputs (before
    the data set's transform: pixels 0–255, unscaled sensor values, token ids without padding),
    ``T × d`` numbers or ``T`` ids; and beside it its labels, one line per sequence. Returns the count."""
    from ..atomic import atomic_write_bytes
    from ..preprocess import InputTransform

    inputs, labels = [], []
    tokens = info.vocab_size is not None
    for start in range(0, len(dataset), chunk):
        indices = torch.arange(start, min(start + chunk, len(dataset)))
        if isinstance(dataset, ArrayDataset):
            x, y = dataset.x[indices].numpy(), dataset.y[indices].numpy()
        else:  # generated: its inputs are raw already
            x, y = (t.numpy() for t in dataset.batch(indices))
        for row, label in zip(x, y):
            if tokens:
                inputs.append(" ".join(map(str, InputTransform.unpadded(row).tolist())))
            else:
                inputs.append(" ".join(f"{v:.9g}" for v in row.reshape(-1).tolist()))  # 9 digits: float32 exactly
            labels.append(" ".join(map(str, label.reshape(-1).tolist())))
    atomic_write_bytes(inputs_path, ("\n".join(inputs) + "\n").encode())
    atomic_write_bytes(labels_path, ("\n".join(labels) + "\n").encode())
    return len(inputs)
