"""Test metric of a trained run: float model vs integer-only inference at several state widths.

    python benchmarks/integer_accuracy.py RUN_DIR [--bits 8 10 12 16] [--data-dir D] [--calibration 512]

The best checkpoint is exported (``.hrnn``), its fixed-point scales are calibrated on the first
``--calibration`` training sequences, and the test split is evaluated by the NumPy float runtime
and by the integer runtime (bit-identical to the generated C code).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from hadamrnn.deploy import runtime
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model
from hadamrnn.train import load_splits, load_trained


def metric(logits: np.ndarray, y: np.ndarray, name: str) -> float:
    if name == "cross_entropy":
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        return float(-np.take_along_axis(log_probs, y[..., None], -1).mean())
    predicted = (logits[..., 0] > 0).astype(np.int64) if logits.shape[-1] == 1 else logits.argmax(-1)
    return float((predicted == y).mean())


def chunked(logits, x: np.ndarray, rows: int = 256) -> np.ndarray:
    """``logits(x)`` a few hundred sequences at a time: each step's arrays then stay in cache."""
    return np.concatenate([logits(x[i:i + rows]) for i in range(0, len(x), rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 10, 12, 16])
    parser.add_argument("--data-dir")
    parser.add_argument("--calibration", type=int, default=512)
    args = parser.parse_args()
    model, config, info = load_trained(args.run)
    splits = load_splits(config, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        export_model(model, Path(tmp) / "m.hrnn")
        exported = runtime.load(Path(tmp) / "m.hrnn")
    calibration = splits.train.batch(torch.arange(min(args.calibration, len(splits.train))))[0].numpy()
    x, y = (t.numpy() for t in splits.test.batch(torch.arange(len(splits.test))))
    print(f"{info.name}: test {info.metric} on {len(y)} sequences", flush=True)
    print(f"  float (NumPy runtime): {metric(chunked(exported.logits, x), y, info.metric):.4f}", flush=True)
    for bits in args.bits:
        integer = quantize_model(exported, calibration, bits)
        print(f"  integer, {bits:2d}-bit states and inputs: {metric(chunked(integer.logits, x), y, info.metric):.4f}",
              flush=True)


if __name__ == "__main__":
    main()
