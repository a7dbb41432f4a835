"""Fixed costs of a small training run: what a sweep's trial and the README's main job pay before learning.

    python benchmarks/startup.py [--repeats 3] [--epochs 1 5] [--json]

Writes a 32-series ``.npz`` (20 steps, 3 features, 2 classes; batch 16: 2 steps an epoch) and
times ``hadamrnn train`` on it in a fresh process, the median of ``--repeats`` runs for each
``--epochs``; then the import time of what such a run loads (a fresh interpreter each: torch,
``torch._dynamo``, which every ``torch.optim`` optimizer imports, matplotlib, numba and hadamrnn's
kernels). The kernels are numba's cached ones (compiled by an untimed first run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMPORTS = {"python": "pass", "torch": "import torch", "torch + torch._dynamo": "import torch, torch._dynamo",
           "hadamrnn.train": "import hadamrnn.train", "matplotlib.pyplot": "import matplotlib.pyplot",
           "hadamrnn.native (numba)": "import hadamrnn.native"}


def seconds(command: list[str]) -> float:
    """Wall time of a command in a fresh process (benchmarks/sweep.py uses it too)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(48, 20, 3)).astype(np.float32), rng.integers(0, 2, 48)
        np.savez(work / "small.npz", x_train=x[:32], y_train=y[:32], x_val=x[32:40], y_val=y[32:40], x_test=x[40:],
                 y_test=y[40:])
        config = work / "small.yaml"
        config.write_text(f"data: {{name: npz, path: {work / 'small.npz'}, batch_size: 16}}\n"
                          f"model: {{hidden_size: 16}}\n")
        train = [sys.executable, "-m", "hadamrnn.cli", "train", str(config)]
        seconds(train + ["--out", str(work / "warm")])  # numba compiles or loads its cache once
        for epochs in args.epochs:
            times = [seconds(train + ["--set", f"optim.epochs={epochs}", "--out", str(work / f"run{epochs}-{k}")])
                     for k in range(args.repeats)]
            rows[f"train, {epochs} epoch(s) of 2 steps"] = statistics.median(times)
    for name, code in IMPORTS.items():
        rows[f"import {name}"] = statistics.median(seconds([sys.executable, "-c", code]) for _ in range(args.repeats))
    if args.json:
        print(json.dumps({name: round(value, 3) for name, value in rows.items()}))
    else:
        for name, value in rows.items():
            print(f"{name:40} {value:6.2f} s")


if __name__ == "__main__":
    main()
