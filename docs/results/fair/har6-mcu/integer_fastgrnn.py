"""FastGRNN with hard σ and tanh as the integer model its C runs, beside the float model, per state width.

    python docs/results/fair/har6-mcu/integer_fastgrnn.py [--data-dir DIR] RUN_DIR...

For each run (its best-validation checkpoint) and each state width: the integer model exactly as
``hadamrnn export RUN --target c --bits B`` builds it (calibrated on the first 512 training
windows), on every HAR-6 test window: the share of windows where its class equals the float
model's, its test macro-F1 and accuracy, the float model's, the stored bytes of its C (constant
arrays) and how many of its intermediates need ``int64_t``. One JSON object per line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from hadamrnn.deploy.codegen import weight_bytes
from hadamrnn.deploy.integer_fastgrnn import quantize_fastgrnn
from hadamrnn.preprocess import InputTransform
from hadamrnn.train import load_splits, load_trained
from hadamrnn.train.loop import class_counts, macro_f1

WIDTHS = (8, 10, 12, 13, 14, 16)


def _scores(y: np.ndarray, predicted: np.ndarray, classes: int) -> tuple[float, float]:
    counts = class_counts(torch.from_numpy(y), torch.from_numpy(predicted), classes)
    return macro_f1(counts), float(np.mean(y == predicted))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    for run in args.runs:
        model, config, info = load_trained(run)
        splits = load_splits(config, args.data_dir)
        calibration = splits.train.batch(torch.arange(min(512, len(splits.train))))[0].numpy()
        x, y = splits.test.batch(torch.arange(len(splits.test)))
        with torch.no_grad():
            float_classes = model.eval()(x).argmax(-1).numpy()
        x, y = x.numpy(), y.numpy()
        float_f1, float_accuracy = _scores(y, float_classes, info.output_size)
        transform = InputTransform.from_dict(info.transform) if info.transform is not None else None
        for bits in WIDTHS:
            integer = quantize_fastgrnn(model, calibration, bits, transform, info.classes)
            classes = integer.predict(x)
            f1, accuracy = _scores(y, classes, info.output_size)
            print(json.dumps({
                "run": run, "bits": bits, "gate_bits": integer.gate_bits, "windows": len(y),
                "agreement": float(np.mean(classes == float_classes)), "test_macro_f1": f1,
                "test_accuracy": accuracy, "float_test_macro_f1": float_f1, "float_test_accuracy": float_accuracy,
                "stored_bytes": weight_bytes(integer),
                "int64_intermediates": [bound.name for bound in integer.bounds() if bound.ctype == "int64_t"]}),
                flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
