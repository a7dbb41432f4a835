"""Seconds per epoch of finished runs' settings, measured one after another on an otherwise idle machine.

    python benchmarks/epoch_seconds.py RUN_DIR... [--epochs 3] [--json] [--data-dir DIR] [--processes K]

A study's runs often share the cores with other work, so the times they record say little about
speed. This re-trains each run's resolved configuration (its ``config.yaml``) for ``--epochs``
epochs (at least 2) in a temporary directory, alone, and reports the seconds of training and
validation per epoch as ``fit`` records them (``metrics.jsonl``), after the first epoch: the first
also pays for start-up (threads, compiled kernels, caches), reported beside it. The final test pass
is left out. Run nothing else meanwhile: the figures are only comparable within one run of this
script, on the CPU it names.

``--processes K`` then also trains K copies of each setting at once, each with 1/K of the threads,
PyTorch's and the numba kernels' (as ``hadamrnn sweep --workers K`` runs trials), and prints their
combined throughput against the copy alone: K times the alone time per epoch over the concurrent
one. Small models gain from it, because one step's products are too small to share between threads.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from hadamrnn import native
from hadamrnn.train import fit, load_config


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(run_dir: Path, epochs: int, data_dir: str | None) -> dict:
    config = load_config(run_dir / "config.yaml")
    config = replace(config, optim=replace(config.optim, epochs=epochs))
    with tempfile.TemporaryDirectory() as tmp:
        fit(config, Path(tmp) / "run", data_dir=data_dir, progress=False)
        lines = (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
    ends = [record["seconds"] for record in map(json.loads, lines) if "val_metric" in record]  # cumulative
    return {"run": str(run_dir), "model": config.model.name, "data": config.data.name, "epochs": epochs,
            "first_epoch_seconds": ends[0], "seconds_per_epoch": (ends[-1] - ends[0]) / (len(ends) - 1)}


def _measure_with_threads(threads: int, run_dir: Path, epochs: int, data_dir: str | None) -> dict:
    native.set_threads(threads)
    return measure(run_dir, epochs, data_dir)


def concurrent(run_dir: Path, epochs: int, data_dir: str | None, processes: int) -> list[dict]:
    """``measure`` in ``processes`` processes at once, the machine's threads shared out among them."""
    threads = max(1, (os.cpu_count() or 1) // processes)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.starmap(_measure_with_threads, [(threads, run_dir, epochs, data_dir)] * processes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories (their config.yaml is re-run)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per setting, at least 2 (default 3)")
    parser.add_argument("--data-dir", help="data directory (default: each run's own)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument("--processes", type=int, default=1,
                        help="also train K copies at once and print their throughput against one alone")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch's time includes start-up")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    cpu = f"{cpu_name()}, {torch.get_num_threads()} threads"
    if not args.json:
        print(f"# {cpu}; {args.epochs} epoch(s) per setting, one after another")
    for run_dir in args.runs:
        row = {**measure(run_dir, args.epochs, args.data_dir), "cpu": cpu}
        if args.processes > 1:
            together = [r["seconds_per_epoch"] for r in concurrent(run_dir, args.epochs, args.data_dir, args.processes)]
            row.update(processes=args.processes, concurrent_seconds_per_epoch=together,
                       throughput_ratio=args.processes * row["seconds_per_epoch"] / max(together))
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(f"{row['model']:>15} {row['data']:>8} {row['seconds_per_epoch']:>9.2f} s per epoch "
              f"(first {row['first_epoch_seconds']:.2f} s)   {run_dir}", flush=True)
        if args.processes > 1:
            print(f"{'':>15} {args.processes} at once: {', '.join(f'{t:.2f}' for t in together)} s per epoch each; "
                  f"{row['throughput_ratio']:.2f}x the work of one alone", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
