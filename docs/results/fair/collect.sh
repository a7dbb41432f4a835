#!/usr/bin/env bash
# Copies the text records of the fair study's sweeps (runs/fair/TASK-FAMILY) into
# docs/results/fair/TASK/FAMILY/: the resolved spec, --status, and each trial's and seed run's
# config.yaml, metrics.jsonl, results.json and trial.json (no checkpoints), and the study as a text
# journal (carry_study.py; run.sh continues from it on a fresh checkout). Usage: collect.sh TASK
set -euo pipefail
task=$1
cd "$(dirname "$0")/../../.."
for sweep in runs/fair/"$task"-*/; do
    [ -f "$sweep/sweep.yaml" ] || continue    # not a sweep (e.g. runs/fair/pmnist-frozen)
    family=$(basename "$sweep"); family=${family#"$task"-}
    records=docs/results/fair/$task/$family
    mkdir -p "$records"
    cp "$sweep/sweep.yaml" "$records/"
    .venv/bin/hadamrnn sweep "$sweep" --status > "$records/status.txt"
    .venv/bin/python docs/results/fair/carry_study.py "$sweep/study.db" "$records/study.journal"
    for run in "$sweep"/trials/* "$sweep"/seeds/*; do
        [ -d "$run" ] || continue
        target=$records/$(basename "$(dirname "$run")")/$(basename "$run")
        mkdir -p "$target"
        for file in config.yaml metrics.jsonl results.json trial.json; do
            [ -f "$run/$file" ] && cp "$run/$file" "$target/"
        done
    done
done
