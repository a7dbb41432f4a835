#!/usr/bin/env bash
# Re-runs of the fair study's settings outside its sweeps, seeds 1-3 each: the frozen-weight runs
# (TASK/frozen) and other checks of a chosen setting (docs/results/fair/README.md).
# TASK/LIST/runs.txt lists them, one per line: NAME SOURCE [--set KEY=VALUE ...], where SOURCE is a
# recorded run under TASK (e.g. ornn/seeds/seed-1 or ornn/trials/0006) whose config.yaml is re-run
# with the seed and the overrides. Runs go to runs/fair/TASK-LIST/NAME/seed-S; their config,
# metrics and results are copied to TASK/LIST/NAME/seed-S as each ends.
# Resumable: a finished run is skipped, an interrupted one continues.
# Usage: docs/results/fair/rerun.sh TASK LIST [DATA_DIR]
set -euo pipefail
task=$1
list=$2
data=${3:-../shared/data}
cd "$(dirname "$0")/../../.."
records=docs/results/fair/$task
while read -r name source overrides; do
    for seed in 1 2 3; do
        out=runs/fair/$task-$list/$name/seed-$seed
        if [ ! -f "$out/results.json" ]; then
            if [ -f "$out/checkpoints/last.safetensors" ]; then
                .venv/bin/hadamrnn train --resume --out "$out" --data-dir "$data" < /dev/null
            else
                # shellcheck disable=SC2086  # $overrides is a list of --set options
                .venv/bin/hadamrnn train "$records/$source/config.yaml" --set optim.seed="$seed" $overrides \
                    --data-dir "$data" --out "$out" < /dev/null
            fi
        fi
        mkdir -p "$records/$list/$name/seed-$seed"
        cp "$out"/{config.yaml,metrics.jsonl,results.json} "$records/$list/$name/seed-$seed/"
    done
done < "$records/$list/runs.txt"
