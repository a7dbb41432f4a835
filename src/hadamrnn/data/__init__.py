"""Data sets for the paper's benchmarks and your own, by name.

``load_data(name, data_dir, download, **options)`` returns :class:`Splits` (train / val / test and
the :class:`TaskInfo` a model needs). Names: ``copy``, ``smnist``, ``pmnist``, ``imdb``, ``sst2``,
``qqp``, ``har2``, ``har6``, ``npz``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from . import har, mnist, text
from .arrays import ArrayDataset, Splits, TaskInfo
from .copy import CopyTask, copy_baseline, copy_info, load_copy
from .files import DataError, data_dir, download as download_files
from .npz import load_npz

__all__ = ["DATASETS", "load_data", "task_info", "summarize", "baseline", "dump", "CopyTask", "copy_baseline", "Splits", "TaskInfo",
           "ArrayDataset", "DataError", "data_dir"]

DATASETS = ("copy", "smnist", "pmnist", "imdb", "sst2", "qqp", "har2", "har6", "npz")
_FILES = {"smnist": mnist.FILES, "pmnist": mnist.FILES, "imdb": text.IMDB_FILES, **text.GLUE_FILES,
          "har2": har.FILES, "har6": har.FILES}


def _check(name: str, options: dict) -> dict:
    options = {k: v for k, v in options.items() if v is not None}
    allowed = {"copy": {"length", "train_samples", "val_samples", "test_samples", "seed"}, "npz": {"path"}}
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {list(DATASETS)}")
    unknown = set(options) - allowed.get(name, set())
    if unknown:
        raise ValueError(f"data set {name!r} takes no option(s) {sorted(unknown)}; "
                         f"it takes {sorted(allowed.get(name, set())) or 'none'}")
    return options


def task_info(name: str, data_dir_path: str | Path | None = None, **options) -> TaskInfo:
    """What a model needs to know about data set ``name``, without loading it (npz excepted)."""
    options = _check(name, options)
    if name == "copy":
        return copy_info()
    if name in ("smnist", "pmnist"):
        return mnist.INFO[name]
    if name == "imdb":
        return text.IMDB_INFO
    if name in ("sst2", "qqp"):
        return text.glue_info(data_dir(data_dir_path), name)
    if name in ("har2", "har6"):
        return har.har_info(int(name[-1]))
    return load_npz(options.get("path")).info


def load_data(name: str, data_dir_path: str | Path | None = None, download: bool = False, **options) -> Splits:
    """Load data set ``name``. Options: copy — ``length``, ``train_samples``, ``val_samples``,
    ``test_samples``, ``seed``; npz — ``path``. Others take none (``None`` values are ignored)."""
    options = _check(name, options)
    root = data_dir(data_dir_path)
    if download and name in _FILES:
        download_files(name, _FILES[name], root)
    if name == "copy":
        return load_copy(**options)
    if name == "npz":
        return load_npz(options.get("path"))
    if name == "imdb":
        return text.load_imdb(root)
    if name in ("har2", "har6"):
        return har.load_har(root, classes=int(name[-1]))
    if name in ("sst2", "qqp"):
        return text.load_glue(root, name)
    return mnist.load_mnist(root, permuted=name == "pmnist")


def summarize(splits: Splits, max_classes: int = 20) -> dict:
    """Per split: samples, sample shape, sequence length, class counts (at most ``max_classes`` shown)."""
    summary = {"name": splits.info.name, "num_classes": splits.info.num_classes, "loss": splits.info.loss,
               "metric": splits.info.metric, "splits": {}}
    if splits.info.vocab_size is not None:
        summary["vocab_size"] = splits.info.vocab_size
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
            "class_counts": {str(k): counts[k] for k in sorted(counts)[:max_classes]},
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
