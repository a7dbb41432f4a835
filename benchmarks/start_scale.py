"""The model ``fit`` starts a finished run's setting from, measured on validation before any step.

    python benchmarks/start_scale.py RUN_DIR... [--data-dir DIR] [--examples 1000] [--json]

A setting that learns on one seed and stays near chance on another (IMDB's ORNN in the fair study,
docs/results/fair/README.md) may start from a model that is confidently wrong. This builds each
run's start as ``fit`` does (``torch.manual_seed(seed)``, then the model) and reports, on the first
``--examples`` validation examples: the loss (beside the loss of predicting the classes' shares,
the best constant prediction), the root mean square of the logits, and the 2-norm of the loss's
gradient, all parameters together. Nothing is trained, so this takes seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from hadamrnn.train import build_model, load_config, load_splits
from hadamrnn.train.loop import _loss_and_hits  # the training loss itself, whichever the task's


def measure(run_dir: Path, examples: int, data_dir: str | None) -> dict:
    config = load_config(run_dir / "config.yaml")
    if config.optim.init_from is not None:
        raise ValueError(f"{run_dir}: starts from {config.optim.init_from}; only runs trained from scratch are measured")
    splits = load_splits(config, data_dir)
    torch.manual_seed(config.optim.seed)  # as fit does, just before it builds the model
    model = build_model(config, splits.info)
    x, y = splits.val.batch(torch.arange(min(examples, len(splits.val))))
    logits = model(x)
    loss, _, _ = _loss_and_hits(splits.info, logits, y)
    loss.backward()
    gradient = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters() if p.grad is not None))
    shares = torch.bincount(y.long().reshape(-1)).double() / y.numel()
    constant = float(-(shares[shares > 0] * shares[shares > 0].log()).sum())
    return {"run": str(run_dir), "model": config.model.name, "seed": config.optim.seed, "examples": len(y),
            "start_loss": float(loss.detach()), "constant_loss": constant,
            "logit_rms": float(logits.detach().double().pow(2).mean().sqrt()), "gradient_norm": gradient}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories (their config.yaml is built)")
    parser.add_argument("--examples", type=int, default=1000, help="validation examples (default 1000)")
    parser.add_argument("--data-dir", help="data directory (default: each run's own)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args()
    if not args.json:
        print("#    model  seed  start loss  constant loss  logit rms  gradient norm  run")
    for run_dir in args.runs:
        row = measure(run_dir, args.examples, args.data_dir)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(f"{row['model']:>10}  {row['seed']:>4}  {row['start_loss']:>10.4f}  {row['constant_loss']:>13.4f}  "
              f"{row['logit_rms']:>9.4f}  {row['gradient_norm']:>13.4e}  {run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
