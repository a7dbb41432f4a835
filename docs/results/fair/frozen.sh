#!/usr/bin/env bash
# Frozen recurrent weight: families' best fair-study settings re-trained with optim.recurrent_lr=0,
# seeds 1-3, the task's epochs (docs/results/fair/README.md, "Frozen weights" of pMNIST and IMDB).
# TASK/frozen/runs.txt lists the runs, one per line: NAME FAMILY [--set KEY=VALUE ...]; each starts
# from TASK/FAMILY/seeds/seed-1/config.yaml. Runs go to runs/fair/TASK-frozen/NAME/seed-S, their
# config, metrics and results are copied to TASK/frozen/NAME/seed-S as each ends.
# Resumable: a finished run is skipped, an interrupted one continues.
# Usage: docs/results/fair/frozen.sh TASK [DATA_DIR]
set -euo pipefail
task=$1
data=${2:-../shared/data}
cd "$(dirname "$0")/../../.."
records=docs/results/fair/$task
while read -r name family overrides; do
    for seed in 1 2 3; do
        out=runs/fair/$task-frozen/$name/seed-$seed
        if [ ! -f "$out/results.json" ]; then
            if [ -f "$out/checkpoints/last.safetensors" ]; then
                .venv/bin/hadamrnn train --resume --out "$out" --data-dir "$data" < /dev/null
            else
                # shellcheck disable=SC2086  # $overrides is a list of --set options
                .venv/bin/hadamrnn train "$records/$family/seeds/seed-1/config.yaml" \
                    --set optim.recurrent_lr=0 --set optim.seed="$seed" $overrides \
                    --data-dir "$data" --out "$out" < /dev/null
            fi
        fi
        mkdir -p "$records/frozen/$name/seed-$seed"
        cp "$out"/{config.yaml,metrics.jsonl,results.json} "$records/frozen/$name/seed-$seed/"
    done
done < "$records/frozen/runs.txt"
