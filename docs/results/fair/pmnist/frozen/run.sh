#!/usr/bin/env bash
# pMNIST, frozen recurrent weight: each of HadamRNN's and the ORNN's best fair-study settings
# (the same point: lr 1.38e-3, recurrent_lr 1.2e-5) re-trained with optim.recurrent_lr=0, seeds
# 1-3, 5 epochs (docs/results/fair/README.md, "pMNIST"). Resumable: a finished run is skipped, an
# interrupted one continues. Usage: docs/results/fair/pmnist/frozen/run.sh [DATA_DIR]
set -euo pipefail
data=${1:-../shared/data}
cd "$(dirname "$0")/../../../../.."
for family in hadamrnn ornn; do
    for seed in 1 2 3; do
        out=runs/fair/pmnist-frozen/$family/seed-$seed
        if [ -f "$out/results.json" ]; then continue; fi
        if [ -f "$out/checkpoints/last.safetensors" ]; then
            .venv/bin/hadamrnn train --resume --out "$out" --data-dir "$data"
        else
            .venv/bin/hadamrnn train "docs/results/fair/pmnist/$family/seeds/seed-1/config.yaml" \
                --set optim.recurrent_lr=0 --set optim.seed="$seed" --data-dir "$data" --out "$out"
        fi
    done
done
