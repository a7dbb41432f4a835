"""Training steps per second with 1 and with 2 processes (torchrun, gloo) on this machine.

    python benchmarks/distributed.py [--steps 60] [--config copy|gru]

Each run trains ``--steps`` steps of one epoch through the command line (``hadamrnn train``, then
``torchrun --nproc_per_node=2 -m hadamrnn train``) with tiny validation and test splits, and the
steps per second are read from the run's own clock (``results.json``: training seconds, which include
one small validation). Both runs use the same global batch; every process has OMP_NUM_THREADS=1
and NUMBA_NUM_THREADS=1, so two processes use two cores where one process uses one: the ratio
shows what splitting a batch over processes buys on one machine, not what several machines give.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = {
    "copy": "data: {name: copy, length: 200, train_samples: 100000, val_samples: 64, test_samples: 64, batch_size: 128, seed: 0}\n"
            "model: {hidden_size: 128}\n",
    "gru": "data: {name: copy, length: 200, train_samples: 100000, val_samples: 64, test_samples: 64, batch_size: 128, seed: 0}\n"
                  "model: {name: gru, hidden_size: 64}\n",
}


def _run(config: Path, out: Path, processes: int) -> float:
    if processes == 1:
        launcher = [sys.executable, "-m", "hadamrnn"]
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                    "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "hadamrnn"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    subprocess.run([*launcher, "train", str(config), "--out", str(out)], check=True, capture_output=True, env=env)
    results = json.loads((out / "results.json").read_text())
    return results["steps"] / results["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="copy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "run.yaml"
        config.write_text(CONFIGS[args.config] + f"optim: {{epochs: 1, max_steps_per_epoch: {args.steps}, seed: 1}}\n")
        one = _run(config, Path(tmp) / "one", 1)
        two = _run(config, Path(tmp) / "two", 2)
    print(json.dumps({"config": args.config, "steps": args.steps, "steps_per_s_1_process": one,
                      "steps_per_s_2_processes": two, "ratio": two / one}))


if __name__ == "__main__":
    main()
