"""Bytes each run of the HAR-6 byte-budget study stores, beside its test macro-F1.

    python docs/results/fair/har6-mcu/stored_bytes.py RUN_DIR...

HadamRNN, and FastGRNN trained with ``model.activations: hard``: the constant arrays of the
generated C (``hadamrnn export RUN --target c``, at its default state width; HadamRNN: sign bits,
U's levels one per byte, V's two per byte; FastGRNN: the levels of each factor one per byte;
both: the biases as the integer model stores them), measured on the export. Other models (no C
export): ``hadamrnn size``'s count of every parameter at its stored precision (8-bit levels with
one float32 scale per tensor, float32 biases), in bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hadamrnn.deploy.codegen import load_integer_model, weight_bytes
from hadamrnn.size import model_size_bits
from hadamrnn.train import load_trained

BUDGET = 566


def stored_bytes(run: Path) -> tuple[str, int, str]:
    model, config, _ = load_trained(run)
    if config.model.name != "hadamrnn" and getattr(model, "activations", None) != "hard":
        return config.model.name, -(-model_size_bits(model)["total"] // 8), "hadamrnn size"
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "hadamrnn", "export", str(run), "--target", "c", "-o", folder],
                       check=True, capture_output=True)
        return config.model.name, weight_bytes(load_integer_model(Path(folder) / "integer_model.npz")), "C constants"


def main() -> int:
    over = 0
    for run in map(Path, sys.argv[1:]):
        family, size, how = stored_bytes(run)
        results = json.loads((run / "results.json").read_text())
        over += size > BUDGET
        print(f"{run}: {family}, {size} bytes ({how}), test macro-F1 {results['test_macro_f1']:.4f}, "
              f"accuracy {results['test_accuracy']:.4f}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
