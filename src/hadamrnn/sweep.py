"""``hadamrnn sweep``: many small runs of one task, searched by Optuna, each an ordinary run directory.

    hadamrnn sweep SPEC.yaml --out DIR [--storage URL] [--study NAME] [--workers K] [--data-dir D]
    hadamrnn sweep DIR                 # run it again: continues, or starts nothing once finished
    hadamrnn sweep DIR --status        # every trial: state, parameters, value, run directory; the best

A room above :mod:`hadamrnn.train` that only calls :func:`~hadamrnn.train.fit`. A trial is a
configuration — the SPEC's ``base`` config, its fixed ``set`` overrides and a value for every key
of its ``space`` — trained into ``DIR/trials/NNNN`` (``trial.json`` beside it names the study, the
trial and its parameters); its value is that run's best validation metric, maximised or minimised
as the task's metric asks. Once ``trials`` trials have completed (or been pruned), the best one's
configuration is trained once per seed of ``seeds`` into ``DIR/seeds/seed-S``. Every run directory
is one that ``eval``, ``export``, ``size`` and ``compare`` take.

The study lives in Optuna's storage: ``DIR/study.db`` (SQLite) by default, or ``--storage URL``
(``postgresql+psycopg://…``, ``mysql+pymysql://…``, ``journal:PATH``), where the same command run
on several machines makes them workers of one study. A worker records its host, process id and a
heartbeat on its trial: a trial whose worker died (a process gone on this host, or no heartbeat
for ``STALE_SECONDS`` from another) is failed and enqueued again with the same parameters and run
directory, so its retry resumes from the last checkpoint. Workers on one machine take trials under
a file lock in ``DIR``, so they run exactly ``trials``; workers on machines with separate ``DIR``
may together start up to one more trial each than that. The seed runs are trials of a second study,
``NAME:seeds``, created by exactly one worker and each taken by one.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from .atomic import atomic_write_bytes
from .display import format_metric
from .untrusted import parse_json, parse_yaml

__all__ = ["SweepSpec", "Dimension", "SweepError", "run_sweep", "status", "STALE_SECONDS"]

SPEC_KEYS = ("base", "set", "space", "trials", "seeds", "sampler", "sampler_seed", "prune", "model", "study")
SAMPLERS = ("tpe", "random", "grid")
HEARTBEAT_SECONDS = 20.0
STALE_SECONDS = 300.0  # a trial of another host without a heartbeat this long is taken as dead
POLL_SECONDS = 2.0  # how often a worker with no trial left to ask looks whether the others' have ended


def _host() -> str:
    """This machine as it runs now: its name and, where Linux tells it, this boot's id. Container
    machines often share a name ("vm"), and a study carried to a fresh machine keeps the pids of
    the old one: only the same boot may test a worker's pid to learn whether it still runs."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{boot}"


HOST = _host()


class SweepError(ValueError):
    """A sweep specification or directory that cannot be run, with what to do."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise SweepError("hadamrnn sweep needs Optuna: pip install 'hadamrnn[sweep]' (with PostgreSQL: "
                         "'hadamrnn[sweep-postgresql]')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # hadamrnn prints a line per trial itself
    return optuna


@dataclass(frozen=True)
class Dimension:
    """One key of the search space: a float or int range (``log`` spacing optional), or choices."""

    key: str  # SECTION.KEY, as --set takes it
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple | None = None

    @classmethod
    def parse(cls, key: str, value: Any) -> "Dimension":
        if isinstance(value, list):
            if not value or not all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
                raise SweepError(f"space.{key}: choices must be a non-empty list of plain values")
            return cls(key, choices=tuple(value))
        if not isinstance(value, dict) or not {"low", "high"} <= set(value) or set(value) - {"low", "high", "log"}:
            raise SweepError(f"space.{key}: give a range {{low: A, high: B[, log: true]}} or a list of choices")
        low, high, log = value["low"], value["high"], value.get("log", False)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)) or not low < high:
            raise SweepError(f"space.{key}: low and high must be numbers with low < high, got {low!r}, {high!r}")
        if not isinstance(log, bool) or (log and low <= 0):
            raise SweepError(f"space.{key}: log must be true or false, and a log range needs low > 0")
        return cls(key, low, high, log)

    @property
    def integer(self) -> bool:
        return self.choices is None and isinstance(self.low, int) and isinstance(self.high, int)

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def to_spec(self):
        """As a SPEC writes it."""
        return list(self.choices) if self.choices is not None else {"low": self.low, "high": self.high, "log": self.log}

    def grid(self) -> list:
        if self.choices is not None:
            return list(self.choices)
        if self.integer and not self.log:
            return list(range(self.low, self.high + 1))
        raise SweepError(f"space.{self.key}: the grid sampler takes choices or integer ranges, not {self.low}..{self.high}")


@dataclass(frozen=True)
class SweepSpec:
    base: str  # a shipped config name or a path (relative paths: to the spec's folder)
    fixed: dict  # SECTION.KEY -> value, applied as --set before the space
    space: dict  # SECTION.KEY -> Dimension
    trials: int
    seeds: tuple = ()
    sampler: str = "tpe"
    sampler_seed: int = 0
    prune: bool = False
    model: str | None = None  # train --model: another family on the base config's task
    study: str = "sweep"

    @classmethod
    def load(cls, path: str | Path) -> "SweepSpec":
        """A SPEC file, every field checked, and the base config loaded once with each dimension's
        first value, so that a bad key is an error now rather than in every trial."""
        path = Path(path)
        if not path.is_file():
            raise SweepError(f"{path}: no such sweep specification")
        values = parse_yaml(path.read_bytes().decode("utf-8", "replace"), str(path), SweepError)
        if not isinstance(values, dict) or "base" not in values or "space" not in values:
            raise SweepError(f"{path}: a sweep specification is a mapping with at least base and space "
                             f"(keys: {', '.join(SPEC_KEYS)})")
        unknown = sorted(map(str, set(values) - set(SPEC_KEYS)))
        if unknown:
            raise SweepError(f"{path}: unknown key(s) {unknown}; a specification takes {', '.join(SPEC_KEYS)}")
        base = values["base"]
        if not isinstance(base, str):
            raise SweepError(f"{path}: base must be a shipped config's name or a path")
        if base.endswith((".yaml", ".yml")) and not Path(base).is_absolute():
            base = str((path.parent / base).resolve())
        fixed, space = values.get("set") or {}, values["space"]
        if not isinstance(fixed, dict) or not isinstance(space, dict) or not space:
            raise SweepError(f"{path}: set must be a mapping of SECTION.KEY: value, space a non-empty mapping")
        dimensions = {str(key): Dimension.parse(str(key), value) for key, value in space.items()}
        sampler = values.get("sampler", "tpe")
        if sampler not in SAMPLERS:
            raise SweepError(f"{path}: sampler {sampler!r}: choose one of {list(SAMPLERS)}")
        grid = 1
        for dimension in dimensions.values():
            grid *= len(dimension.grid()) if sampler == "grid" else 1
        trials = values.get("trials", grid if sampler == "grid" else None)
        seeds = values.get("seeds") or []
        if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 100_000:
            raise SweepError(f"{path}: trials must be a whole number from 1 to 100000, got {trials!r}")
        if sampler == "grid" and trials != grid:
            raise SweepError(f"{path}: a grid of {grid} points runs {grid} trials; leave trials out, or set it to {grid}")
        if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32
                                                  for s in seeds) or len(set(seeds)) != len(seeds):
            raise SweepError(f"{path}: seeds must be a list of distinct whole numbers in [0, 2^32)")
        for key, kind in (("prune", bool), ("sampler_seed", int), ("model", str), ("study", str)):
            if key in values and values[key] is not None and not isinstance(values[key], kind):
                raise SweepError(f"{path}: {key} must be a {kind.__name__}")
        spec = cls(base, {str(k): v for k, v in fixed.items()}, dimensions, trials, tuple(seeds), sampler,
                   int(values.get("sampler_seed", 0)), bool(values.get("prune", False)), values.get("model"),
                   values.get("study") or path.stem)
        spec.config({key: d.choices[0] if d.choices else d.low for key, d in dimensions.items()})
        return spec

    def to_dict(self) -> dict:
        """The resolved specification (``base`` absolute if a path, the study named), as ``DIR/sweep.yaml`` keeps it."""
        return {"base": self.base, "set": dict(self.fixed), "space": {k: d.to_spec() for k, d in self.space.items()},
                "trials": self.trials, "seeds": list(self.seeds), "sampler": self.sampler,
                "sampler_seed": self.sampler_seed, "prune": self.prune, "model": self.model, "study": self.study}

    def config(self, params: dict, seed: int | None = None):
        """The :class:`~hadamrnn.train.ExperimentConfig` of one trial (and of a seed run)."""
        from .train import load_config

        overrides = [f"{key}={json.dumps(value)}" for key, value in {**self.fixed, **params}.items()]
        if seed is not None:
            overrides.append(f"optim.seed={seed}")
        return load_config(self.base, overrides, family=self.model)

    def sampler_for(self, optuna, trials_so_far: int = 0):
        """TPE or random, seeded by ``sampler_seed`` plus the number of trials the study holds when
        it asks: a worker that starts later (a restart, another worker) draws from another stream
        instead of replaying the first one's points. A grid's points are enqueued trials instead
        (:func:`_open`), which Optuna's GridSampler cannot serve outside ``study.optimize``."""
        seed = self.sampler_seed + trials_so_far
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)

    def grid_points(self) -> list[dict]:
        import itertools

        keys = list(self.space)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.space[k].grid() for k in keys))]


def _storage(url: str | None, out: Path):
    """Optuna's storage for ``url``; None: ``DIR/study.db``."""
    optuna = _optuna()
    if url is None:
        url = f"sqlite:///{(out / 'study.db').resolve()}"
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}  # wait for the file's lock
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except Exception as error:  # SQLAlchemy's: a driver missing, a server down, a bad URL, or
            if attempt < 2 and "IntegrityError" in type(error).__name__:  # another worker creating the tables
                time.sleep(1.0 + attempt)
                continue
            raise SweepError(f"cannot open the study storage {url.split('@')[-1]} ({type(error).__name__}: "
                             f"{str(error)[:300]}); for PostgreSQL: pip install 'hadamrnn[sweep-postgresql]'") from None


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """The workers of one machine (one DIR) take trials one at a time."""
    fd = os.open(out / ".ask.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _alive(trial) -> bool:
    """Whether the worker of a RUNNING trial still runs."""
    attrs = trial.user_attrs
    if attrs.get("host") == HOST and isinstance(attrs.get("pid"), int):
        try:
            os.kill(attrs["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    beat = attrs.get("alive_at", trial.datetime_start.timestamp() if trial.datetime_start else time.time())
    return time.time() - float(beat) < STALE_SECONDS


def _retry_dead(study, say: Callable[[str], None]) -> None:
    """Fail the RUNNING trials whose worker died, and enqueue each again with its parameters and run directory."""
    optuna = _optuna()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _alive(trial):
            continue
        try:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError):
            continue  # another worker got there first
        attrs = {k: v for k, v in trial.user_attrs.items() if k not in ("host", "pid", "alive_at")}
        study.enqueue_trial(trial.params, user_attrs={**attrs, "retry_of": trial.number,
                                                      "run_dir": trial.user_attrs.get("run_dir", _trial_dir(trial.number))})
        say(f"{study.study_name}: trial {trial.number}'s worker died; enqueued again (it resumes from its run directory)")


def _trial_dir(number: int) -> str:
    return f"trials/{number:04d}"


class _Heartbeat:
    """Records ``alive_at`` on a trial every ``HEARTBEAT_SECONDS`` while it runs (in a thread)."""

    def __init__(self, trial) -> None:
        self.trial, self.done = trial, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            try:
                self.trial.set_user_attr("alive_at", time.time())
            except Exception:  # the storage is briefly unreachable: the next beat tries again
                pass

    def __enter__(self) -> "_Heartbeat":
        self.trial.set_user_attr("host", HOST)
        self.trial.set_user_attr("pid", os.getpid())
        self.trial.set_user_attr("alive_at", time.time())
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


class _Pruned(Exception):
    pass


def _train(config, run_dir: Path, data_dir: str | None, on_epoch, record: dict) -> dict:
    """Train ``config`` into ``run_dir`` (resumed if it holds a checkpoint; read if already finished);
    returns its results.json."""
    from .train import checkpoint_path, fit

    results = run_dir / "results.json"
    if results.is_file():  # finished before its worker could report it
        return parse_json(results.read_bytes(), str(results), SweepError)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "trial.json", (json.dumps(record, indent=2) + "\n").encode())
    resume = checkpoint_path(run_dir).is_file()
    result = fit(None if resume else config, run_dir, data_dir=data_dir, resume=resume, progress=False,
                 on_epoch=on_epoch, command=f"hadamrnn sweep (study {record['study']}, trial {record['trial']})")
    if result.completed:
        return result.results
    if result.stopped == "pruned":
        raise _Pruned()
    raise KeyboardInterrupt  # Ctrl-C: fit wrote a checkpoint; the trial is enqueued again


def _run(study, trial, spec: SweepSpec, out: Path, data_dir: str | None, params: dict, seed: int | None,
         say: Callable[[str], None]) -> None:
    """One trial (or seed run), reported to ``study``."""
    optuna = _optuna()
    relative = trial.user_attrs.get("run_dir") or _trial_dir(trial.number)
    trial.set_user_attr("run_dir", relative)
    record = {"study": study.study_name, "trial": trial.number, "params": params,
              **({"seed": seed} if seed is not None else {}), "retry_of": trial.user_attrs.get("retry_of")}

    def on_epoch(row: dict) -> bool:  # the pruner sees every validation
        trial.report(row["val_metric"], row["epoch"])
        return spec.prune and trial.should_prune()

    started = time.perf_counter()
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    with _Heartbeat(trial):
        try:
            results = _train(spec.config(params, seed), out / relative, data_dir, on_epoch, record)
        except _Pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            say(f"{study.study_name}: trial {trial.number} pruned ({shown}; {relative})")
            return
        except KeyboardInterrupt:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={**{k: v for k, v in trial.user_attrs.items()
                                                             if k not in ("host", "pid", "alive_at")},
                                                          "retry_of": trial.number, "run_dir": relative})
            raise
        except Exception as error:  # an error, not a kill: the same configuration would fail again, not retried
            trial.set_user_attr("error", f"{type(error).__name__}: {str(error)[:500]}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            say(f"{study.study_name}: trial {trial.number} failed ({shown}): {str(error)[:300]}")
            return
    value = results["best_val_metric"]
    study.tell(trial, value)
    say(f"{study.study_name}: trial {trial.number} ({shown}): best validation {results['metric_name']} "
        f"{format_metric(value)}, test {format_metric(results['test_metric'])} "
        f"({time.perf_counter() - started:.0f} s; {relative})")


def _direction(spec: SweepSpec, data_dir: str | None) -> str:
    from .train import load_task_info

    config = spec.config({key: d.choices[0] if d.choices else d.low for key, d in spec.space.items()})
    return "maximize" if load_task_info(config, data_dir).higher_is_better else "minimize"


def _prepared(study, what: str):
    """``study`` once its creator has enqueued what it must (a grid's points, the seed runs)."""
    for _ in range(120):
        if study.user_attrs.get("prepared"):
            return study
        time.sleep(0.5)
    raise SweepError(f"study {study.study_name} exists but its {what} were never enqueued (its creator died?): delete "
                     f"it (optuna delete-study --study-name '{study.study_name}' --storage URL) and run the sweep again")


def _open(spec: SweepSpec, storage, data_dir: str | None):
    """The study, created by exactly one worker (Optuna refuses a second creation), which enqueues a grid's points."""
    optuna = _optuna()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if spec.prune else optuna.pruners.NopPruner()
    options = dict(storage=storage, study_name=spec.study, sampler=spec.sampler_for(optuna),
                   pruner=pruner)
    try:
        study = optuna.create_study(direction=_direction(spec, data_dir), load_if_exists=False, **options)
    except optuna.exceptions.DuplicatedStudyError:
        return _prepared(optuna.load_study(**options), "grid points")
    for point in spec.grid_points() if spec.sampler == "grid" else []:
        study.enqueue_trial(point)
    study.set_user_attr("prepared", True)
    return study


def _search(study, spec: SweepSpec, out: Path, data_dir: str | None, say: Callable[[str], None]) -> None:
    """Take and run trials until ``spec.trials`` have completed or been pruned. With none left to
    ask, wait for those other workers run: one may fail and need replacing (or its worker die and
    its trial be retried here), and the seed runs follow them."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    announced = False
    while True:
        with _locked(out):
            _retry_dead(study, say)
            trials = study.get_trials(deepcopy=False)
            counted = sum(t.state in (states.COMPLETE, states.PRUNED, states.RUNNING) for t in trials)
            waiting = sum(t.state == states.WAITING for t in trials)
            running = [t.number for t in trials if t.state == states.RUNNING]
            errors = [t for t in trials if t.state == states.FAIL and "error" in t.user_attrs]
            if len(errors) >= spec.trials:
                raise SweepError(f"{len(errors)} trials failed, as many as the sweep's trials; the first: trial "
                                 f"{errors[0].number}: {errors[0].user_attrs['error']}")
            trial = None
            if waiting or counted < spec.trials:
                study.sampler = spec.sampler_for(optuna, len(trials))
                trial = study.ask()  # an enqueued retry first, else a new sample
                trial.set_user_attr("host", HOST)
                trial.set_user_attr("pid", os.getpid())
                params = {key: dimension.suggest(trial) for key, dimension in spec.space.items()}
            elif not running:
                return
        if trial is None:
            if not announced:
                say(f"{spec.study}: waiting for trials {', '.join(map(str, running))}, run by other workers; "
                    f"the seed runs follow them")
                announced = True
            time.sleep(POLL_SECONDS)
            continue
        _run(study, trial, spec, out, data_dir, params, None, say)


def _seed_study(study, spec: SweepSpec, storage, say: Callable[[str], None]):
    """``NAME:seeds``, created and filled by exactly one worker: a trial per seed, with the best trial's parameters."""
    optuna = _optuna()
    name = f"{spec.study}:seeds"
    try:
        seeds = optuna.create_study(storage=storage, study_name=name, direction=study.direction, load_if_exists=False)
    except optuna.exceptions.DuplicatedStudyError:
        return _prepared(optuna.load_study(study_name=name, storage=storage), "seed runs")
    best = study.best_trial
    for seed in spec.seeds:
        seeds.enqueue_trial({}, user_attrs={"seed": seed, "params": json.dumps(best.params), "best_trial": best.number,
                                            "run_dir": f"seeds/seed-{seed}"})
    seeds.set_user_attr("prepared", True)
    say(f"{spec.study}: best trial {best.number} ({format_metric(best.value)}); "
        f"re-running it with seeds {list(spec.seeds)}")
    return seeds


def _reseed(study, spec: SweepSpec, out: Path, storage, data_dir: str | None, say: Callable[[str], None]) -> None:
    optuna = _optuna()
    states = optuna.trial.TrialState
    if not spec.seeds:
        return
    with _locked(out):
        seeds = _seed_study(study, spec, storage, say)
    while True:
        with _locked(out):
            _retry_dead(seeds, say)
            if not any(t.state == states.WAITING for t in seeds.get_trials(deepcopy=False)):
                return
            trial = seeds.ask()
            trial.set_user_attr("host", HOST)
            trial.set_user_attr("pid", os.getpid())
        _run(seeds, trial, spec, out, data_dir, json.loads(trial.user_attrs["params"]), trial.user_attrs["seed"], say)


def _claim(spec: SweepSpec, out: Path) -> None:
    """``DIR/sweep.yaml`` keeps the resolved specification this directory runs; another one is refused."""
    import yaml

    kept = out / "sweep.yaml"
    if kept.is_file():
        if SweepSpec.load(kept).to_dict() != spec.to_dict():
            raise SweepError(f"{out} holds the sweep of another specification ({kept}); choose another --out, or run "
                             f"'hadamrnn sweep {out}' to continue that one")
        return
    atomic_write_bytes(kept, yaml.safe_dump(spec.to_dict(), sort_keys=False).encode())


@contextmanager
def _stopping_workers_on_exit(processes: list) -> Iterator[None]:
    """A sweep stopped with ``kill`` (SIGTERM) stops its workers too, instead of leaving them to
    train on unseen; their trials are retried from their checkpoints when the sweep runs again."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            if process.pid is not None:
                process.join()


def _worker(spec_path: str, out: str, storage_url: str | None, study: str | None, data_dir: str | None,
            threads: int) -> None:
    """One worker process of ``--workers K``: trials, then seed runs."""
    from . import native

    native.set_threads(threads)
    run_sweep(spec_path, out, storage_url, study, data_dir, workers=1)


def run_sweep(spec_path: str | Path, out: str | Path, storage_url: str | None = None, study: str | None = None,
              data_dir: str | None = None, workers: int = 1, say: Callable[[str], None] = print) -> None:
    """Run (or continue) the sweep of ``spec_path`` in ``out`` with ``workers`` processes on this machine."""
    spec_path, out = Path(spec_path), Path(out)
    spec = SweepSpec.load(spec_path)
    if study:
        spec = replace(spec, study=study)
    out.mkdir(parents=True, exist_ok=True)
    _claim(spec, out)
    if workers > 1:
        import multiprocessing

        _open(spec, _storage(storage_url, out), data_dir)  # the tables and the study, once before the workers start
        context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no fork of torch's threads
        threads = max(1, (os.cpu_count() or 1) // workers)
        processes = [context.Process(target=_worker, args=(str(out / "sweep.yaml"), str(out), storage_url, None,
                                                           data_dir, threads)) for _ in range(workers)]
        with _stopping_workers_on_exit(processes):
            for process in processes:
                process.start()
            for process in processes:
                process.join()
        failed = [p.exitcode for p in processes if p.exitcode != 0]
        if failed:
            raise SweepError(f"{len(failed)} of {workers} workers ended with status {failed}; run the sweep again to "
                             f"continue (a killed worker's trial is retried)")
        return
    storage = _storage(storage_url, out)
    trials = _open(spec, storage, data_dir)
    _search(trials, spec, out, data_dir, say)
    _reseed(trials, spec, out, storage, data_dir, say)


def status(out: str | Path, storage_url: str | None = None, study: str | None = None) -> str:
    """Every trial of the sweep in ``out`` (state, value, parameters, run directory), the best, and the seed runs."""
    optuna = _optuna()
    out = Path(out)
    spec = SweepSpec.load(out / "sweep.yaml")
    name = study or spec.study
    storage = _storage(storage_url, out)
    try:
        trials = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SweepError(f"no study {name!r} in the storage of {out}; has the sweep started?") from None
    lines = [f"study {name}: {spec.trials} trials asked, direction {trials.direction.name.lower()}"]
    for trial in trials.get_trials(deepcopy=False):
        value = "" if trial.value is None else format_metric(trial.value)
        note = "".join(f"; {key} {trial.user_attrs[key]}" for key in ("retry_of", "error") if key in trial.user_attrs)
        lines.append(f"  trial {trial.number:4d} {trial.state.name:8} {value:>8}  {json.dumps(trial.params)}  "
                     f"{trial.user_attrs.get('run_dir', '')}{note}")
    complete = [t for t in trials.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = trials.best_trial
        lines.append(f"best: trial {best.number}, {format_metric(best.value)}, {json.dumps(best.params)}")
    try:
        seeds = optuna.load_study(study_name=f"{name}:seeds", storage=storage)
    except KeyError:
        seeds = None
    for trial in seeds.get_trials(deepcopy=False) if seeds is not None else []:
        value = "" if trial.value is None else format_metric(trial.value)
        lines.append(f"  seed {trial.user_attrs.get('seed')!s:>6} {trial.state.name:8} {value:>8}  "
                     f"{trial.user_attrs.get('run_dir', '')}")
    return "\n".join(lines)
