#!/usr/bin/env bash
# The fair study (README.md here), one sweep at a time (each uses both cores). Resumable: run it
# again and each sweep continues where it stopped (a killed trial resumes from its checkpoint), a
# finished one starts nothing. Usage: [WORKERS=K] docs/results/fair/run.sh TASK [DATA_DIR [FAMILY...]]
# (TASK: har6, copy200, har6-mcu, pmnist, imdb; FAMILY: the name of a TASK/FAMILY.yaml, else all). WORKERS=2 runs two one-thread trials at a time:
# for the small gated cells that does about twice the work of one two-thread trial (README.md).
#
# Each study lives in runs/fair/TASK-FAMILY/study.db; collect.sh copies it into the committed
# records as a text journal (TASK/FAMILY/study.journal, carry_study.py). On a fresh checkout, where
# runs/ is gone, the sweep continues from that copy: finished trials stay finished, a trial that
# was running starts again. Sweeps recorded before the journal existed are skipped where their
# study.db is gone (they would start again from nothing).
set -euo pipefail
task=$1
data=${2:-../shared/data}
workers=${WORKERS:-1}
shift $(($# < 2 ? $# : 2))
cd "$(dirname "$0")/../../.."
families=("$@")
[ ${#families[@]} -gt 0 ] || families=($(basename -s .yaml docs/results/fair/"$task"/*.yaml))
for family in "${families[@]}"; do
    spec=docs/results/fair/$task/$family.yaml
    [ -f "$spec" ] || { echo "no $spec: the families of $task are $(basename -s .yaml docs/results/fair/"$task"/*.yaml | tr '\n' ' ')" >&2; exit 2; }
    out=runs/fair/$task-$family
    records=docs/results/fair/$task/$family
    if [ ! -f "$out/study.db" ]; then
        if [ -f "$records/study.journal" ]; then
            mkdir -p "$out" && .venv/bin/python docs/results/fair/carry_study.py "$records/study.journal" "$out/study.db"
        elif [ -f "$records/status.txt" ]; then
            echo "$task-$family: recorded in $records, its study.db left with the machine that ran it: skipped"
            continue
        fi
    fi
    .venv/bin/hadamrnn sweep "$spec" --out "$out" --data-dir "$data" --workers "$workers"
done
