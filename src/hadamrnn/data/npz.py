"""Your own sequence-classification data from one ``.npz`` file.

Keys: ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally ``x_val``, ``y_val`` (else
10% of the training set, chosen by a fixed seed, is held out). ``x``: ``(N, T, d)`` floats or
``(N, T)`` integer token ids (0 = padding); ``y``: ``(N,)`` class ids (many-to-one) or ``(N, T)``
(a class at every step, many-to-many). Classes are ``0 … C-1``; ``C`` is the largest label + 1.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..options import option
from ..preprocess import InputTransform
from .arrays import MAX_CLASSES, MAX_FEATURES, MAX_VOCABULARY, ArrayDataset, Splits, TaskInfo
from .spec import DataOptions, DataSet

__all__ = ["load_npz", "NPZOptions", "DATASETS"]

SPLIT_SEED = 1234


def _fail(path: Path, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def load_npz(path: str | Path | None, normalize: bool = False) -> Splits:
    """The splits of an ``.npz`` file; ``normalize``: feature channels standardised by the training
    split's mean and standard deviation, kept as the run's input transform (exported with it)."""
    if path is None:
        raise ValueError("data set 'npz' needs a file: set data.path (or --path) to your .npz")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .npz file (expected keys x_train, y_train, x_test, y_test"
                                f"[, x_val, y_val])")
    try:
        archive = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise _fail(path, f"not a readable .npz archive ({type(error).__name__}: {error})") from None
    required = ["x_train", "y_train", "x_test", "y_test"]
    missing = [k for k in required if k not in archive]
    if missing:
        raise _fail(path, f"missing key(s) {missing}; found {sorted(archive)}; required {required} "
                          f"(optional x_val, y_val)")
    if ("x_val" in archive) != ("y_val" in archive):
        raise _fail(path, "give both x_val and y_val, or neither")
    splits = {s: (archive[f"x_{s}"], archive[f"y_{s}"]) for s in ("train", "val", "test") if f"x_{s}" in archive}

    tokens = np.issubdtype(splits["train"][0].dtype, np.integer)
    per_step = splits["train"][1].ndim == 2
    shapes = set()
    for split, (x, y) in splits.items():
        if tokens != np.issubdtype(x.dtype, np.integer):
            raise _fail(path, f"x_{split} is {x.dtype} but x_train is {splits['train'][0].dtype}: use one kind of input")
        if x.ndim != (2 if tokens else 3):
            raise _fail(path, f"x_{split} has shape {x.shape}; expected (N, T) token ids or (N, T, d) floats")
        if 0 in x.shape:
            raise _fail(path, f"x_{split} has shape {x.shape}: every split needs at least one sample of at least "
                              f"one step" + ("" if tokens else " and one feature"))
        if not tokens and x.shape[2] > MAX_FEATURES:
            raise _fail(path, f"x_{split} has {x.shape[2]} features per step; at most {MAX_FEATURES}")
        if not tokens and not np.issubdtype(x.dtype, np.floating):
            raise _fail(path, f"x_{split} has dtype {x.dtype}; expected floats or integer token ids")
        if not tokens and not np.isfinite(x).all():
            raise _fail(path, f"x_{split} holds NaN or infinite values")
        if not np.issubdtype(y.dtype, np.integer):
            raise _fail(path, f"y_{split} has dtype {y.dtype}; labels must be integer class ids")
        if y.shape[0] != x.shape[0]:
            raise _fail(path, f"x_{split} has {x.shape[0]} samples but y_{split} has {y.shape[0]}")
        if y.ndim != (2 if per_step else 1):
            raise _fail(path, f"y_{split} has shape {y.shape}; expected {'(N, T): a label per step' if per_step else '(N,)'}"
                              f", like y_train {splits['train'][1].shape}")
        if per_step and y.shape[1] != x.shape[1]:
            raise _fail(path, f"y_{split} has shape {y.shape}, a label per step, but x_{split} has {x.shape[1]} steps: "
                              f"expected ({x.shape[0]}, {x.shape[1]})")
        if y.min(initial=0) < 0:
            raise _fail(path, f"y_{split} has negative labels; classes must be 0..C-1")
        if y.max(initial=0) >= MAX_CLASSES:
            raise _fail(path, f"y_{split} holds the label {int(y.max())}; labels are class ids 0..C-1 with at most "
                              f"{MAX_CLASSES} classes")
        if tokens and x.min(initial=0) < 0:
            raise _fail(path, f"x_{split} has negative token ids")
        if tokens and x.max(initial=0) >= MAX_VOCABULARY:
            raise _fail(path, f"x_{split} holds the token id {int(x.max())}; ids are 0..V-1 with a vocabulary of at "
                              f"most {MAX_VOCABULARY}")
        shapes.add(x.shape[2] if not tokens else None)
    if len(shapes) > 1:
        raise _fail(path, f"feature sizes differ between splits: {sorted(shapes)}")

    if normalize and tokens:
        raise _fail(path, "data.normalize standardises feature channels; this file holds token ids")

    def tensors(x, y):
        x = torch.from_numpy(x.astype(np.int64) if tokens else x.astype(np.float32))
        return ArrayDataset(x, torch.from_numpy(y.astype(np.int64)), transform)

    if "val" not in splits:
        x, y = splits["train"]
        order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
        held = max(1, len(x) // 10)
        splits["val"], splits["train"] = (x[order[:held]], y[order[:held]]), (x[order[held:]], y[order[held:]])
    transform = InputTransform.standardizing(splits["train"][0].astype(np.float32)) if normalize else None
    num_classes = int(max(int(y.max(initial=0)) for _, y in splits.values())) + 1
    info = TaskInfo("npz", num_classes=max(num_classes, 2), loss="ce_all" if per_step else "ce",
                    input_size=None if tokens else int(splits["train"][0].shape[2]),
                    vocab_size=int(max(int(x.max(initial=0)) for x, _ in splits.values())) + 1 if tokens else None,
                    transform=transform.to_dict() if transform is not None else None)
    return Splits(info, *(tensors(*splits[s]) for s in ("train", "val", "test")))


@dataclass
class NPZOptions(DataOptions):
    name: str = option("npz", choices=("npz",))
    path: str | None = None  # the .npz file
    normalize: bool = False  # standardise feature channels by the training split's mean and sd


DATASETS = {"npz": DataSet(NPZOptions, lambda options, root: load_npz(options.path, options.normalize).info,
                           lambda options, root: load_npz(options.path, options.normalize), paths=("path",))}
