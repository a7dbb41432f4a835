#!/usr/bin/env bash
# pMNIST, frozen recurrent weight: HadamRNN's and the ORNN's best fair-study settings (the same
# point: lr 1.38e-3, recurrent_lr 1.2e-5) re-trained with optim.recurrent_lr=0, seeds 1-3, 5 epochs;
# and HadamRNN frozen with float U and V, as the ORNN has (docs/results/fair/README.md, "pMNIST").
# Resumable: a finished run is skipped, an interrupted one continues.
# Usage: docs/results/fair/pmnist/frozen/run.sh [DATA_DIR]
set -euo pipefail
data=${1:-../shared/data}
cd "$(dirname "$0")/../../../../.."
while read -r name family overrides; do
    for seed in 1 2 3; do
        out=runs/fair/pmnist-frozen/$name/seed-$seed
        if [ -f "$out/results.json" ]; then continue; fi
        if [ -f "$out/checkpoints/last.safetensors" ]; then
            .venv/bin/hadamrnn train --resume --out "$out" --data-dir "$data" < /dev/null
        else
            # shellcheck disable=SC2086  # $overrides is a list of --set options
            .venv/bin/hadamrnn train "docs/results/fair/pmnist/$family/seeds/seed-1/config.yaml" \
                --set optim.recurrent_lr=0 --set optim.seed="$seed" $overrides \
                --data-dir "$data" --out "$out" < /dev/null
        fi
    done
done <<'RUNS'
hadamrnn hadamrnn
ornn ornn
hadamrnn-float-uv hadamrnn --set model.input_bits=null --set model.output_bits=null
RUNS
