"""Your own time series: the UEA/UCR archive's ``.ts`` files, or a CSV in long format.

``data: {name: timeseries, train: PATH, test: PATH[, val: PATH][, normalize: true]}``; the format
follows each file's extension.

- ``.ts`` (the archive's format, https://www.timeseriesclassification.com): ``#`` comments, ``@``
  header lines (``@classLabel true LABEL…`` required; ``@timeStamps true`` and regression targets are
  not read), then ``@data`` and one series per line: its channels separated by ``:``, each a
  comma-separated list of values, the class label last. Missing values (``?``) are refused.
- ``.csv`` (long format, one row per step): a header with the columns ``series``, ``step`` and
  ``label`` and one column per channel (any other names, in file order). The rows of one series
  carry the same label and its steps ``0 … T-1`` in any order.

Labels are strings; the classes are the training file's labels, sorted (whole numbers in numeric
order, then the others alphabetically), and a label of another
split that the training file lacks is an error naming it. ``normalize`` (default on): each channel
shifted and scaled by its mean and standard deviation over the training series, as HAR's are, kept
as the run's input transform and carried by every export. Series of unequal lengths are
pre-padded to the longest training series (``length`` of the transform): padding steps are zeros
as the model sees them (each channel's mean in raw values), and a longer validation or test series
keeps its last steps, as token rows are cut. Every runtime and the generated C pad and cut a line
the same way, so ``predict`` takes a series of any length. Without ``val``, 10% of the training
series (a fixed seed) are held out for validation.

These formats are read by this module rather than by a reader of the field (aeon's
``load_from_ts_file``): measured 2026-12-03, aeon names neither the file nor the line of a
malformed value ("could not convert string to float: 'x'"), takes labels its header does not
declare, and brings about 470 MB of dependencies and 2.7 s of import for a text format.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..classes import sorted_labels
from ..options import option
from ..preprocess import InputTransform
from .arrays import MAX_CLASSES, MAX_FEATURES, ArrayDataset, Splits, TaskInfo
from .spec import DataSet, SplitFilesOptions, file_error, held_out

__all__ = ["read_series", "write_series", "TimeSeriesOptions", "DATASETS"]

MAX_FILE_BYTES = 4 << 30
_fail = file_error


def _number(path: Path, line: int, text: str) -> float:
    text = text.strip()
    if text == "?" or text == "":
        raise _fail(path, line, "a missing value ('?' or an empty field); fill or drop the series")
    try:
        value = float(text)
    except ValueError:
        raise _fail(path, line, f"not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise _fail(path, line, f"{text[:40]!r} is not a finite number")
    return value


def _read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    series, labels, declared, in_data = [], [], None, False
    with open(path, encoding="utf-8", errors="strict") as stream:
        try:
            for number, raw in enumerate(stream, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if not in_data:
                    words = line.split()
                    key = words[0].lower()
                    if key == "@data":
                        if declared is None:
                            raise _fail(path, number, "no '@classLabel true LABEL…' line before @data: this reader "
                                                      "takes classification files")
                        in_data = True
                    elif key == "@timestamps" and len(words) > 1 and words[1].lower() == "true":
                        raise _fail(path, number, "series with time stamps are not read; write the values alone")
                    elif key == "@targetlabel" and len(words) > 1 and words[1].lower() == "true":
                        raise _fail(path, number, "regression targets are not read (classification only)")
                    elif key == "@classlabel":
                        if len(words) < 3 or words[1].lower() != "true":
                            raise _fail(path, number, "expected '@classLabel true LABEL LABEL…'")
                        declared = set(words[2:])
                    elif not key.startswith("@"):
                        raise _fail(path, number, f"expected a header line (@…) or @data, got {line[:40]!r}")
                    continue
                *channels, label = line.split(":")
                label = label.strip()
                if not channels:
                    raise _fail(path, number, "expected channels separated by ':' and the class label last")
                if label not in declared:
                    raise _fail(path, number, f"label {label[:40]!r} is not declared by @classLabel "
                                              f"({' '.join(sorted(declared))[:200]})")
                values = [[_number(path, number, v) for v in channel.split(",")] for channel in channels]
                if len({len(v) for v in values}) != 1:
                    raise _fail(path, number, f"its channels have different lengths {[len(v) for v in values]}")
                series.append(np.array(values, dtype=np.float64).T)  # (T, channels)
                labels.append(label)
        except UnicodeDecodeError as error:
            raise _fail(path, None, f"not UTF-8 text ({error})") from None
    if not in_data:
        raise _fail(path, None, "no @data line: not a .ts file")
    return series, labels


def _read_csv(path: Path) -> tuple[list[np.ndarray], list[str]]:
    rows: dict[str, dict[int, list[float]]] = {}
    labels: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in ("series", "step", "label") if name not in header]
            if missing:
                raise _fail(path, 1, f"the header lacks the column(s) {missing}; expected series, step, label and "
                                     f"one column per channel")
            where = {name: header.index(name) for name in ("series", "step", "label")}
            channels = [k for k, name in enumerate(header) if name not in where]
            if not channels:
                raise _fail(path, 1, "no channel column besides series, step and label")
            for number, row in enumerate(reader, 2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise _fail(path, number, f"{len(row)} fields where the header has {len(header)}")
                name, label = row[where["series"]].strip(), row[where["label"]].strip()
                step = _number(path, number, row[where["step"]])
                if step != int(step) or step < 0:
                    raise _fail(path, number, f"step {row[where['step']][:20]!r} is not a whole number ≥ 0")
                if labels.setdefault(name, label) != label:
                    raise _fail(path, number, f"series {name[:40]!r} has the label {label[:40]!r} here and "
                                              f"{labels[name][:40]!r} before")
                steps = rows.setdefault(name, {})
                if int(step) in steps:
                    raise _fail(path, number, f"series {name[:40]!r} has step {int(step)} twice")
                steps[int(step)] = [_number(path, number, row[k]) for k in channels]
    except UnicodeDecodeError as error:
        raise _fail(path, None, f"not UTF-8 text ({error})") from None
    except csv.Error as error:
        raise _fail(path, None, f"not a readable CSV file ({error})") from None
    series = []
    for name, steps in rows.items():
        if sorted(steps) != list(range(len(steps))):
            gap = next(k for k in range(len(steps) + 1) if k not in steps)
            raise _fail(path, None, f"series {name[:40]!r} lacks step {gap} (its steps must be 0 … T-1)")
        series.append(np.array([steps[k] for k in range(len(steps))], dtype=np.float64))
    return series, [labels[name] for name in rows]


def read_series(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The series ``(T_i, channels)`` float64 and their string labels of a ``.ts`` or ``.csv`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such time-series file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise _fail(path, None, f"{path.stat().st_size} bytes; at most {MAX_FILE_BYTES} are read")
    readers = {".ts": _read_ts, ".csv": _read_csv}
    if path.suffix.lower() not in readers:
        raise _fail(path, None, f"unknown extension {path.suffix!r}: .ts (UEA/UCR) or .csv (long format)")
    series, labels = readers[path.suffix.lower()](path)
    if not series:
        raise _fail(path, None, "no series")
    widths = {s.shape[1] for s in series}
    if len(widths) != 1:
        raise _fail(path, None, f"series with different numbers of channels {sorted(widths)[:5]}")
    if widths.pop() > MAX_FEATURES:
        raise _fail(path, None, f"more than {MAX_FEATURES} channels")
    return series, labels


def write_series(path: str | Path, series, labels: list[str], problem: str = "hadamrnn") -> int:
    """Write series ``(T_i, channels)`` with their labels as a ``.ts`` or long-format ``.csv`` file
    that :func:`read_series` reads back exactly (values with 9 significant digits: float32 exactly).
    Returns the number of series."""
    from ..atomic import atomic_write_bytes

    path = Path(path)
    labels = [str(label) for label in labels]
    if any(not label or any(c.isspace() or c in ":," for c in label) for label in labels):
        raise ValueError("labels must be non-empty and hold no space, ':' or ','")
    number = lambda v: f"{v:.9g}"  # noqa: E731
    channels = int(np.shape(series[0])[1]) if len(series) else 0
    if path.suffix.lower() == ".ts":
        lengths = {len(s) for s in series}
        lines = [f"@problemName {problem}", "@timeStamps false", "@missing false",
                 f"@univariate {'true' if channels == 1 else 'false'}", f"@dimensions {channels}",
                 f"@equalLength {'true' if len(lengths) == 1 else 'false'}",
                 *([f"@seriesLength {lengths.pop()}"] if len(lengths) == 1 else []),
                 f"@classLabel true {' '.join(sorted(set(labels)))}", "@data"]
        lines += [":".join(",".join(map(number, np.asarray(s)[:, c])) for c in range(channels)) + f":{label}"
                  for s, label in zip(series, labels)]
    elif path.suffix.lower() == ".csv":
        lines = ["series,step," + ",".join(f"channel {c}" for c in range(channels)) + ",label"]
        lines += [f"{k},{t}," + ",".join(map(number, row)) + f",{label}"
                  for k, (s, label) in enumerate(zip(series, labels)) for t, row in enumerate(np.asarray(s))]
    else:
        raise ValueError(f"{path}: write .ts or .csv")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return len(series)


@dataclass
class TimeSeriesOptions(SplitFilesOptions):
    """The ``data:`` keys of your own time series: ``train``, ``test`` and ``val`` name .ts or .csv files."""

    name: str = option("timeseries", choices=("timeseries",))
    normalize: bool = True  # per-channel mean and standard deviation of the training series


def _stack(series: list[np.ndarray], length: int, padding: np.ndarray) -> np.ndarray:
    """``(N, length, d)`` float32: each series' last ``length`` steps, pre-padded with ``padding`` rows."""
    out = np.empty((len(series), length, len(padding)), np.float32)
    out[:] = padding
    for k, values in enumerate(series):
        kept = values[-length:]
        out[k, length - len(kept):] = kept
    return out


def _load(options: TimeSeriesOptions, root: Path) -> Splits:
    for key in ("train", "test"):
        if getattr(options, key) is None:
            raise ValueError(f"data set 'timeseries' needs data.{key}: a .ts or .csv file")
    train_path = Path(options.train)
    train_series, train_labels = read_series(train_path)
    classes = sorted_labels(train_labels)
    if not 2 <= len(classes) <= MAX_CLASSES:
        raise _fail(train_path, None, f"{len(classes)} class(es); a classifier needs 2 to {MAX_CLASSES}")
    index = {label: k for k, label in enumerate(classes)}

    def labelled(path: Path, series, labels) -> tuple[list, np.ndarray]:
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise _fail(path, None, f"label {unknown[0][:40]!r} is not among the training file's classes "
                                    f"({', '.join(classes)[:200]})")
        return series, np.array([index[label] for label in labels], dtype=np.int64)

    splits = {"train": labelled(train_path, train_series, train_labels),
              "test": labelled(Path(options.test), *read_series(options.test))}
    if options.val is not None:
        splits["val"] = labelled(Path(options.val), *read_series(options.val))
    else:
        series, y = splits["train"]
        kept, held = held_out(train_path, len(series))
        splits["train"] = [series[k] for k in kept], y[kept]
        splits["val"] = [series[k] for k in held], y[held]
    lengths = {len(values) for series, _ in splits.values() for values in series}
    length = max(len(values) for values in splits["train"][0])
    steps = np.concatenate(splits["train"][0]).astype(np.float32)[None]  # every real training step, no padding
    channels = steps.shape[2]
    transform = (InputTransform.standardizing(steps) if options.normalize else
                 InputTransform("features", offset=(0.0,) * channels, divisor=(1.0,) * channels))
    if lengths != {length}:  # unequal: pre-padded, with what the transform makes zeros
        transform = InputTransform("features", offset=transform.offset, divisor=transform.divisor, length=length)
    padding = np.array(transform.offset, np.float32)
    (x, y), (val_x, val_y), (test_x, test_y) = ((_stack(splits[s][0], length, padding), splits[s][1])
                                                for s in ("train", "val", "test"))
    info = TaskInfo("timeseries", num_classes=len(classes), loss="ce", input_size=channels,
                    transform=transform.to_dict(), classes=tuple(classes))
    split = lambda a, b: ArrayDataset(torch.from_numpy(a), torch.from_numpy(b), transform)  # noqa: E731
    return Splits(info, split(x, y), split(val_x, val_y), split(test_x, test_y))


DATASETS = {"timeseries": DataSet(TimeSeriesOptions, lambda options, root: _load(options, root).info, _load,
                                  paths=("train", "test", "val"))}
