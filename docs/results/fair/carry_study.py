"""Copies every study of one Optuna storage into a new one: run.sh and collect.sh carry a sweep's
study between its live SQLite file (runs/fair/TASK-FAMILY/study.db) and a text journal in the
committed records (TASK/FAMILY/study.journal), so that a fresh checkout continues the study.

    python docs/results/fair/carry_study.py FROM TO    (each: a .db or a .journal file)

Trials keep their numbers, states, parameters and attributes: a trial that was running when it
was copied is found dead by the sweep (no heartbeat) and started again from its run directory.
The sweep's workers share SQLite, not the journal: Optuna's journal file can be read mid-write by
concurrent processes (optuna issue #5138), whereas here one process writes it, once. TO is written beside itself and renamed: a copy cut off
midway leaves the previous one.
"""

import os
import sys
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend


def storage(path: Path, kind: str):
    """Optuna's storage in ``path``: a text journal if ``kind`` is ``.journal``, else SQLite."""
    if kind == ".journal":
        return JournalStorage(JournalFileBackend(str(path)))
    return RDBStorage(f"sqlite:///{path.resolve()}")


def main(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    origin, copy = storage(source, source.suffix), storage(partial, target.suffix)
    for name in optuna.get_all_study_names(origin):
        optuna.copy_study(from_study_name=name, from_storage=origin, to_storage=copy)
    del copy
    Path(str(partial) + ".lock").unlink(missing_ok=True)
    os.replace(partial, target)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
