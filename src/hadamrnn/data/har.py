"""Human activity recognition (IoT): HAR-6 and HAR-2, windows re-derived from the HAPT raw recordings.

From ``hapt/HAPT_RawData.zip`` (``RawData/acc_expEE_userUU.txt``, ``gyro_…``, ``labels.txt``), the
UCI HAR procedure: per recording and channel a median filter (3 samples) and a 3rd-order
Butterworth low-pass at 20 Hz (50 Hz sampling); the accelerometer is split into gravity (3rd-order
Butterworth low-pass at 0.3 Hz) and body (total − gravity). Windows of 128 samples (2.56 s) with
50% overlap are cut inside each labelled segment of activities 1–6; 9 channels per step in UCI
HAR's order (body acc xyz, gyro xyz, total acc xyz). Subjects follow UCI HAR's split; the
validation set holds out training subjects ``VAL_SUBJECTS`` (windows overlap, so a random split
would leak). Channels are standardised with the training windows' mean and standard deviation
(the data set's input transform: the arrays hold the filtered windows in g and rad/s).
HAR-6 classes are activities 1–6 (walking, upstairs, downstairs, sitting, standing, laying) as
0–5; HAR-2 merges them into moving (0) and static (1).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..options import option
from ..preprocess import InputTransform
from .arrays import ArrayDataset, Splits, TaskInfo
from .files import DataFile, damaged, require
from .spec import DataOptions, DataSet

__all__ = ["FILES", "load_har", "har_info", "windows_from_recordings", "TEST_SUBJECTS", "DATASETS"]

FILES = [DataFile("hapt/HAPT_RawData.zip", "66f70439a4801c8920f3cd77c7d429b70702afbd9455793310080676466ce1fb",
                  "https://archive.ics.uci.edu/static/public/341/smartphone+based+recognition+of+human+activities+and+postural+transitions.zip")]
TEST_SUBJECTS = {2, 4, 9, 10, 12, 13, 18, 20, 24}
VAL_SUBJECTS = {28, 29, 30}
WINDOW, STEP, RATE = 128, 64, 50.0


def _filtered(acc: np.ndarray, gyro: np.ndarray) -> np.ndarray:
    """(samples, 9): body acc, gyro, total acc after the UCI HAR filters."""
    from scipy.signal import butter, medfilt, sosfiltfilt

    noise = butter(3, 20.0, fs=RATE, output="sos")
    gravity_band = butter(3, 0.3, fs=RATE, output="sos")

    def clean(signal: np.ndarray) -> np.ndarray:
        signal = np.stack([medfilt(signal[:, c], 3) for c in range(3)], axis=1)
        return sosfiltfilt(noise, signal, axis=0)

    total, gyro = clean(acc), clean(gyro)
    body = total - sosfiltfilt(gravity_band, total, axis=0)
    return np.concatenate([body, gyro, total], axis=1).astype(np.float32)


def windows_from_recordings(recordings: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
                            labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``(N, 128, 9)``, activity ids ``(N,)`` and subjects ``(N,)`` from raw recordings.

    ``recordings[(experiment, user)] = (acc (S, 3), gyro (S, 3))``; ``labels`` rows are
    ``experiment, user, activity, first, last`` (1-based, inclusive sample numbers).
    """
    xs, ys, subjects = [], [], []
    signals = {key: _filtered(acc, gyro) for key, (acc, gyro) in recordings.items()}
    for experiment, user, activity, first, last in labels:
        if not 1 <= activity <= 6 or (experiment, user) not in signals:
            continue
        signal = signals[(experiment, user)][first - 1:last]
        for start in range(0, len(signal) - WINDOW + 1, STEP):
            xs.append(signal[start:start + WINDOW])
            ys.append(activity)
            subjects.append(user)
    return np.stack(xs), np.array(ys, dtype=np.int64), np.array(subjects, dtype=np.int64)


def _read_zip(path: Path):
    pattern = re.compile(r"RawData/(acc|gyro)_exp(\d+)_user(\d+)\.txt$")
    recordings: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    with zipfile.ZipFile(path) as archive:
        labels = np.loadtxt(io.BytesIO(archive.read("RawData/labels.txt")), dtype=np.int64, ndmin=2)
        for name in archive.namelist():
            match = pattern.search(name)
            if match:
                key = (int(match[2]), int(match[3]))
                recordings.setdefault(key, {})[match[1]] = np.loadtxt(io.BytesIO(archive.read(name)), ndmin=2)
    paired = {key: (parts["acc"], parts["gyro"]) for key, parts in recordings.items() if len(parts) == 2}
    return paired, labels


def har_info(classes: int) -> TaskInfo:
    return TaskInfo(f"har{classes}", num_classes=classes, loss="ce", input_size=9)


def load_har(root: Path, classes: int) -> Splits:
    name = f"har{classes}"
    (path,) = require(name, FILES, root)
    try:
        recordings, labels = _read_zip(path)
        x, activity, subject = windows_from_recordings(recordings, labels)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise damaged(name, FILES, root, f"{type(error).__name__}: {error}") from error
    y = activity - 1 if classes == 6 else (activity >= 4).astype(np.int64)
    test = np.isin(subject, list(TEST_SUBJECTS))
    val = np.isin(subject, list(VAL_SUBJECTS)) & ~test
    train = ~test & ~val
    mean, std = x[train].mean(axis=(0, 1)), x[train].std(axis=(0, 1)) + np.float32(1e-8)
    transform = InputTransform("features", offset=tuple(float(v) for v in mean), divisor=tuple(float(v) for v in std))
    split = lambda mask: ArrayDataset(torch.from_numpy(np.ascontiguousarray(x[mask])), torch.from_numpy(y[mask]),  # noqa: E731
                                      transform)
    info = replace(har_info(classes), transform=transform.to_dict())
    return Splits(info, split(train), split(val), split(test))


@dataclass
class HAROptions(DataOptions):
    name: str = option("har6", choices=("har2", "har6"))


DATASETS = {name: DataSet(HAROptions, lambda options, root: har_info(int(options.name[-1])),
                          lambda options, root: load_har(root, classes=int(options.name[-1])), files=tuple(FILES))
            for name in ("har2", "har6")}
