"""How far the recurrent matrix ``W`` of finished runs' settings moves, epoch by epoch, re-trained here.

    python benchmarks/recurrent_drift.py RUN_DIR... [--epochs N] [--data-dir DIR] [--json]

Issue #27 asks that a family trailing another be explained by a measurement, not a guess; this is
one. It re-trains each run's resolved configuration (its ``config.yaml``; ``--epochs`` epochs, else
the run's own) in a temporary directory and reads ``W`` after every epoch from the checkpoint that
``fit`` writes. Per epoch: the relative change within the epoch, ``|W_e - W_(e-1)|_F / |W_(e-1)|_F``,
and since the start, ``|W_e - W_0|_F / |W_0|_F`` (Frobenius norms), beside the validation metric.

``W`` is the dense ``n x n`` matrix the recurrence applies: HadamRNN's ``diag(sign u) H / sqrt(n)``
(``k`` sign flips out of ``n`` change it by ``2 sqrt(k / n)``), an ORNN's orthogonal ``W`` or its
quantized form. ``W_0`` is the model ``fit`` starts from, built the same way from the same seed (the
data loaders draw from their own generators, not torch's). The gated cells have no single ``W``
and are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from hadamrnn.models.hadamrnn import HadamRNN
from hadamrnn.models.ornn import ORNN
from hadamrnn.train import build_model, checkpoint_path, fit, load_config, load_task_info, load_trained


def recurrent_matrix(model: torch.nn.Module) -> torch.Tensor:
    """The ``(n, n)`` matrix the recurrence applies, in float64."""
    with torch.no_grad():
        if isinstance(model, HadamRNN):
            return model.recurrent.weight.double()
        if isinstance(model, ORNN):
            return model.recurrent_weight().double()
    raise ValueError(f"{type(model).__name__} has no single recurrent matrix: this measures HadamRNN and the ORNNs")


def start_matrix(config, data_dir: str | None) -> torch.Tensor:
    """The recurrent matrix ``fit`` starts ``config`` from, built the same way from the same seed."""
    torch.manual_seed(config.optim.seed)  # as fit does, just before it builds the model
    return recurrent_matrix(build_model(config, load_task_info(config, data_dir)))


def measure(run_dir: Path, epochs: int | None, data_dir: str | None) -> list[dict]:
    config = load_config(run_dir / "config.yaml")
    if config.optim.init_from is not None:
        raise ValueError(f"{run_dir}: starts from {config.optim.init_from}; only runs trained from scratch are re-run")
    if epochs is not None:
        config = replace(config, optim=replace(config.optim, epochs=epochs))
    previous = start = start_matrix(config, data_dir)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"

        def on_epoch(record: dict) -> bool:  # called once the epoch's checkpoint is written
            nonlocal previous
            current = recurrent_matrix(load_trained(checkpoint_path(run, "last"))[0])
            rows.append({"run": str(run_dir), "model": config.model.name, "epoch": record["epoch"],
                         "val_metric": record["val_metric"], "metric_name": record["metric_name"],
                         "flips": record.get("flips"),
                         "change_in_epoch": float((current - previous).norm() / previous.norm()),
                         "change_from_start": float((current - start).norm() / start.norm())})
            previous = current
            return False

        fit(config, run, data_dir=data_dir, progress=False, on_epoch=on_epoch)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories (their config.yaml is re-run)")
    parser.add_argument("--epochs", type=int, help="epochs per setting (default: the run's own)")
    parser.add_argument("--data-dir", help="data directory (default: each run's own)")
    parser.add_argument("--json", action="store_true", help="one JSON object per epoch")
    args = parser.parse_args()
    for run_dir in args.runs:
        if not args.json:
            print(f"# {run_dir}\n# epoch  val metric  change in epoch  change from start  sign flips")
        for row in measure(run_dir, args.epochs, args.data_dir):
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                flips = "" if row["flips"] is None else f"{row['flips']:>11}"
                print(f"{row['epoch']:>7}  {row['val_metric']:>10.4f}  {row['change_in_epoch']:>15.3e}  "
                      f"{row['change_from_start']:>17.3e}{flips}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
