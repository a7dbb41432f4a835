"""Trials per hour of a small sweep: fresh ``hadamrnn train`` processes against ``hadamrnn sweep``'s
warm workers, with 1 and 2 workers on this machine.

    python benchmarks/sweep.py [--trials 12] [--json]

Every trial trains the copy task (T = 30, 256 training sequences, 1 epoch, n = 32): a run whose fixed
costs (interpreter, imports, numba's cached kernels, the first model) are most of its time, as in
the sweeps that tune small models. "Fresh processes" runs the same configurations one
``hadamrnn train`` at a time; a sweep's workers each import once and then only call ``fit``.
One trial's start-up is a fresh process's time minus a warm worker's per-trial time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from startup import seconds  # benchmarks/startup.py: run from benchmarks/, as python benchmarks/sweep.py does

SPEC = """base: copy-smoke
set: {{data.length: 30, optim.epochs: 1, data.train_samples: 256, data.val_samples: 64, data.test_samples: 64,
      model.hidden_size: 32}}
space: {{optim.lr: {{low: 1.0e-3, high: 1.0e-2, log: true}}}}
trials: {trials}
sampler: random
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    hadamrnn = [sys.executable, "-m", "hadamrnn.cli"]
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        spec = work / "spec.yaml"
        spec.write_text(SPEC.format(trials=args.trials))
        seconds(hadamrnn + ["sweep", str(spec), "--out", str(work / "warm-up")])  # numba's cache, once
        fresh = 0.0
        for k in range(args.trials):
            lr = 1e-3 * 10 ** (k / max(args.trials - 1, 1))
            fresh += seconds(hadamrnn + ["train", "copy-smoke", "--set", "data.length=30", "--set", "optim.epochs=1",
                                          "--set", "data.train_samples=256", "--set", "data.val_samples=64",
                                          "--set", "data.test_samples=64", "--set", "model.hidden_size=32",
                                          "--set", f"optim.lr={lr}", "--out", str(work / f"fresh-{k}")])
        rows["fresh processes"] = fresh
        for workers in (1, 2):
            rows[f"sweep, {workers} worker(s)"] = seconds(
                hadamrnn + ["sweep", str(spec), "--out", str(work / f"sweep-{workers}"), "--workers", str(workers)])
    result = {name: {"seconds": round(s, 1), "trials_per_hour": round(args.trials * 3600 / s)} for name, s in rows.items()}
    result["one trial's start-up (s)"] = round((rows["fresh processes"] - rows["sweep, 1 worker(s)"]) / args.trials, 2)
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name:28} {value}")


if __name__ == "__main__":
    main()
