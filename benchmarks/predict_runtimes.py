"""Wall time of ``predict`` in every runtime against the generated C program, on the same input file.

    python benchmarks/predict_runtimes.py [--line-mb 10] [--har-dump] [--data-dir DIR] [--json]

1. One long line (``--line-mb`` MB of raw numbers, 9 per step) through a HAR-shaped model (n = 64,
   9 inputs, 6 classes, a per-channel transform, 4-bit U/V, 12-bit states): the C ``predict``
   (gcc -O2) and ``hadamrnn predict --runtime numpy | numpy-int | torch``, and ``onnx`` (the same
   float model as an ONNX graph in onnxruntime) where ``hadamrnn[onnx]`` is installed.
2. With ``--har-dump`` and the real data: ``pretrained:har6-q8`` exported to C, the HAR-6 test split
   dumped as ``predict`` reads it (2,996 lines), and the same runtimes on it (no ONNX: its states are
   fixed-point, an integer step the float graph does not compute).

Each runtime runs as the command a user types (a fresh process: the Python runtimes pay their
imports), once, in this one run; ratios are to the C program. ``reading`` is the part that grows
with the input: the same runtime in this process, model loaded and kernels compiled, reading the
file (``Predictor.run``). Outputs of C and ``numpy-int`` are checked identical.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model
from hadamrnn.deploy.predict import open_predictor
from hadamrnn.preprocess import InputTransform

HADAMRNN = [sys.executable, "-m", "hadamrnn.cli"]


def _build(directory: Path) -> None:
    subprocess.run(["gcc", "-std=c99", "-O2", "-o", str(directory / "predict"), str(directory / "predict.c"),
                    str(directory / "hadamrnn_model.c")], check=True)


def _timed(command: list[str], stdin: Path) -> tuple[float, bytes]:
    with open(stdin, "rb") as stream:
        started = time.perf_counter()
        done = subprocess.run(command, stdin=stream, capture_output=True)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr.decode()[-500:]}")
    return seconds, done.stdout


def compare(name: str, c_dir: Path, model_file: Path, inputs: Path, onnx_file: Path | None = None) -> dict:
    """Seconds per runtime on ``inputs``, and each one's ratio to C."""
    seconds, outputs = {}, {}
    seconds["c"], outputs["c"] = _timed([str(c_dir / "predict")], inputs)
    runtimes = [("numpy-int", c_dir), ("numpy", model_file), ("torch", model_file)]
    runtimes += [("onnx", onnx_file)] if onnx_file is not None else []
    for runtime_name, model in runtimes:
        seconds[runtime_name], outputs[runtime_name] = _timed(
            HADAMRNN + ["predict", str(model), "-", "--runtime", runtime_name], inputs)
    if outputs["numpy-int"] != outputs["c"]:
        raise RuntimeError(f"{name}: numpy-int and C disagree")
    reading = {}
    for runtime_name, model in runtimes:
        predictor = open_predictor(model, runtime_name)
        with open(inputs, "rb") as stream:
            list(predictor.run(io.BytesIO(stream.readline())))  # compile or load the kernels
        with open(inputs, "rb") as stream:
            started = time.perf_counter()
            list(predictor.run(stream))
            reading[runtime_name] = time.perf_counter() - started
    return {"input": name, "bytes": inputs.stat().st_size, "lines": outputs["c"].count(b"\n"),
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "ratio_to_c": {k: round(v / seconds["c"], 2) for k, v in seconds.items() if k != "c"},
            "reading_seconds": {k: round(v, 3) for k, v in reading.items()},
            "reading_ratio_to_c": {k: round(v / seconds["c"], 2) for k, v in reading.items()}}


def long_line(work: Path, megabytes: float) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    transform = InputTransform("features", offset=tuple(rng.normal(size=9)), divisor=tuple(rng.uniform(0.5, 2, 9)))
    model = HadamRNN(HadamRNNConfig(input_size=9, hidden_size=64, output_size=6))
    export_model(model, work / "line.hrnn", transform.to_dict())
    onnx_file = None
    if importlib.util.find_spec("onnxruntime") is not None:
        from hadamrnn.data import TaskInfo
        from hadamrnn.deploy.onnx import export_onnx

        onnx_file = export_onnx(model, TaskInfo("line", num_classes=6, loss="ce", input_size=9,
                                                transform=transform.to_dict()), work / "line.onnx")
    calibration = transform.features(rng.normal(size=(8, 128, 9)))
    c_dir = work / "line_c"
    write_c(quantize_model(runtime.load(work / "line.hrnn"), calibration, bits=12), c_dir)
    (c_dir / "model.hrnn").write_bytes((work / "line.hrnn").read_bytes())
    _build(c_dir)
    steps = int(megabytes * 1e6 / (9 * 10))  # "-0.123456 " is 10 bytes
    values = rng.normal(size=steps * 9)
    inputs = work / "line.txt"
    inputs.write_bytes((" ".join(f"{v:.6f}" for v in values) + "\n").encode())
    return compare(f"one line of {inputs.stat().st_size / 1e6:.1f} MB ({steps} steps)", c_dir, work / "line.hrnn",
                   inputs, onnx_file)


def har_dump(work: Path, data_dir: str | None) -> dict:
    c_dir = work / "har6_c"
    subprocess.run(HADAMRNN + ["export", "pretrained:har6-q8", "--target", "c", "-o", str(c_dir)]
                   + (["--data-dir", data_dir] if data_dir else []), check=True, capture_output=True)
    subprocess.run(HADAMRNN + ["data", "har6", "--dump", "test", "-o", str(work / "har6_test.txt")]
                   + (["--data-dir", data_dir] if data_dir else []), check=True, capture_output=True)
    _build(c_dir)
    return compare("HAR-6 test dump (pretrained:har6-q8)", c_dir, c_dir / "model.hrnn", work / "har6_test.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mb", type=float, default=10.0)
    parser.add_argument("--har-dump", action="store_true", help="also the HAR-6 test dump (needs the real data)")
    parser.add_argument("--data-dir", default=os.environ.get("HADAMRNN_DATA"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rows = [long_line(work, args.line_mb)] + ([har_dump(work, args.data_dir)] if args.har_dump else [])
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            ratios = ", ".join(f"{k} {v}x" for k, v in row["ratio_to_c"].items())
            reading = ", ".join(f"{k} {v}x" for k, v in row["reading_ratio_to_c"].items())
            print(f"{row['input']}: C {row['seconds']['c']:.2f} s. Commands: {ratios}. Reading in process: "
                  f"{reading} (seconds: {row['seconds']}, reading: {row['reading_seconds']})")


if __name__ == "__main__":
    main()
