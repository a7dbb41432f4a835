"""The size of the recurrent matrix ``W`` of finished runs, at the start and at their checkpoints.

    python benchmarks/recurrent_spectrum.py RUN_DIR... [--data-dir DIR] [--json]

With no non-linearity inside the recurrence, ``h_T`` holds ``W^k U x_{T-k}``: an input ``k`` steps
back is scaled by about ``rho(W)^k`` (``rho`` the spectral radius, the largest eigenvalue modulus)
and at most by ``|W|_2^k`` (the largest singular value). An orthogonal ``W`` has both equal to 1;
the naive binary ORNN's ``sign(W) / sqrt(n)`` does not. Per run: ``n``, ``|W|_2``, ``rho(W)`` and
``|W^T W - I|_2`` (how far from orthogonal) for ``W_0`` (rebuilt from the run's seed, as
``benchmarks/recurrent_drift.py`` does) and for the best and last checkpoints. Nothing is trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from recurrent_drift import recurrent_matrix, start_matrix  # benchmarks/: run as python benchmarks/recurrent_spectrum.py
from hadamrnn.train import checkpoint_path, load_config, load_trained


def spectrum(w: torch.Tensor) -> dict:
    """``|W|_2``, ``rho(W)`` and ``|W^T W - I|_2`` of a float64 ``(n, n)`` matrix."""
    identity = torch.eye(w.shape[0], dtype=w.dtype)
    return {"norm": float(torch.linalg.matrix_norm(w, 2)), "radius": float(torch.linalg.eigvals(w).abs().max()),
            "off_orthogonal": float(torch.linalg.matrix_norm(w.T @ w - identity, 2))}


def measure(run_dir: Path, data_dir: str | None) -> list[dict]:
    config = load_config(run_dir / "config.yaml")
    matrices = {"start": start_matrix(config, data_dir)}
    for which in ("best", "last"):
        matrices[which] = recurrent_matrix(load_trained(checkpoint_path(run_dir, which))[0])
    return [{"run": str(run_dir), "model": config.model.name, "n": w.shape[0], "matrix": which, **spectrum(w)}
            for which, w in matrices.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories (with their checkpoints)")
    parser.add_argument("--data-dir", help="data directory, for the task's shapes (default: each run's own)")
    parser.add_argument("--json", action="store_true", help="one JSON object per matrix")
    args = parser.parse_args()
    if not args.json:
        print("# model            n  W      |W|_2   rho(W)  |W^T W - I|_2  run")
    for run_dir in args.runs:
        for row in measure(run_dir, args.data_dir):
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{row['model']:<15} {row['n']:>4}  {row['matrix']:<5} {row['norm']:>7.4f} {row['radius']:>8.4f} "
                      f"{row['off_orthogonal']:>14.3e}  {run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
