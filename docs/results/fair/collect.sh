#!/usr/bin/env bash
# Copies the text records of the fair study's sweeps (runs/fair/TASK-FAMILY) into
# docs/results/fair/TASK/FAMILY/: the resolved spec, --status, and each trial's and seed run's
# config.yaml, metrics.jsonl, results.json and trial.json (no checkpoints), and the study's journal
# (run.sh continues from it on a fresh checkout) up to its last complete line. Usage: collect.sh TASK
set -euo pipefail
task=$1
cd "$(dirname "$0")/../../.."
for sweep in runs/fair/"$task"-*/; do
    [ -f "$sweep/sweep.yaml" ] || continue    # not a sweep (e.g. runs/fair/pmnist-frozen)
    family=$(basename "$sweep"); family=${family#"$task"-}
    records=docs/results/fair/$task/$family
    mkdir -p "$records"
    cp "$sweep/sweep.yaml" "$records/"
    storage=()
    if [ -f "$sweep/study.journal" ]; then    # the sweeps of run.sh; earlier ones kept study.db
        storage=(--storage "journal:$sweep/study.journal")
        # a line being appended as we copy would end the copy mid-line: keep whole lines only
        python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(d[:d.rfind(b"\n") + 1])' \
            "$sweep/study.journal" "$records/study.journal"
    fi
    .venv/bin/hadamrnn sweep "$sweep" --status "${storage[@]}" > "$records/status.txt"
    for run in "$sweep"/trials/* "$sweep"/seeds/*; do
        [ -d "$run" ] || continue
        target=$records/$(basename "$(dirname "$run")")/$(basename "$run")
        mkdir -p "$target"
        for file in config.yaml metrics.jsonl results.json trial.json; do
            [ -f "$run/$file" ] && cp "$run/$file" "$target/"
        done
    done
done
