"""``hadamrnn sweep``: trials and seed runs as run directories, re-runs that start nothing, killed
workers whose trials are retried without duplicate or loss, several workers on one storage
(SQLite, and a real PostgreSQL server when its binaries are installed)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="hadamrnn sweep needs Optuna: pip install 'hadamrnn[sweep]'")

from hadamrnn.cli import main  # noqa: E402
from hadamrnn.display import format_metric  # noqa: E402
from hadamrnn.sweep import HOST, STALE_SECONDS, SweepError, SweepSpec, run_sweep  # noqa: E402
from hadamrnn.train import fit, load_config, load_trained  # noqa: E402

TINY = """base: copy-smoke
set: {{data.length: 30, optim.epochs: {epochs}, data.train_samples: {samples}, data.val_samples: 32,
      data.test_samples: 32, data.batch_size: 32, optim.checkpoint_minutes: 0}}
space:
  optim.lr: {{low: 1.0e-3, high: 1.0e-2, log: true}}
  model.hidden_size: [16, 32]
trials: 4
seeds: [1, 2]
"""


def _spec(tmp_path, epochs=1, samples=128, name="tiny"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(epochs=epochs, samples=samples))
    return path


def _study(out, name="tiny", storage=None):
    storage = storage or f"sqlite:///{out / 'study.db'}"
    return optuna.load_study(study_name=name, storage=storage)


def _check_complete(out, name="tiny", storage=None):
    """4 completed trials with 4 distinct run directories that hold their results, and the 2 seed runs."""
    trials = _study(out, name, storage).get_trials()
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4, [(t.number, t.state) for t in trials]
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    dirs = [t.user_attrs["run_dir"] for t in complete]
    assert len(set(dirs)) == 4 and sorted(os.listdir(out / "trials")) == sorted(Path(d).name for d in dirs)
    for trial in complete:
        run = out / trial.user_attrs["run_dir"]
        results = json.loads((run / "results.json").read_text())
        assert results["best_val_metric"] == pytest.approx(trial.value)
        assert json.loads((run / "trial.json").read_text())["params"] == trial.params
    seeds = _study(out, f"{name}:seeds", storage).get_trials()
    assert sorted(t.user_attrs["seed"] for t in seeds if t.state == optuna.trial.TrialState.COMPLETE) == [1, 2]
    assert sorted(os.listdir(out / "seeds")) == ["seed-1", "seed-2"]
    return complete


def test_a_four_trial_sweep_writes_run_directories_and_seed_runs_and_a_rerun_starts_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(_spec(tmp_path)), "--out", str(out)]) == 0
    complete = _check_complete(out)
    best = min(complete, key=lambda t: t.value)
    for seed in (1, 2):
        model, config, _ = load_trained(out / "seeds" / f"seed-{seed}")
        assert config.optim.seed == seed and config.model.hidden_size == best.params["model.hidden_size"]
        assert config.optim.lr == pytest.approx(best.params["optim.lr"])
    assert main(["eval", str(out / complete[0].user_attrs["run_dir"])]) == 0
    status = capsys.readouterr().out
    assert f"best: trial {best.number}, {format_metric(best.value)}," in status and "seed      2 COMPLETE" in status
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
    assert main(["sweep", str(out)]) == 0  # the directory alone: nothing left to run
    assert len(_study(out).get_trials()) == 4 and {p: p.stat().st_mtime_ns for p in out.rglob("results.json")} == stamps


def test_a_killed_worker_leaves_its_trial_to_be_retried_with_no_duplicate_and_no_loss(tmp_path):
    spec, out = _spec(tmp_path, epochs=2, samples=3200), tmp_path / "out"
    worker = subprocess.Popen([sys.executable, "-m", "hadamrnn.cli", "sweep", str(spec), "--out", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "trials/0001/checkpoints/last.safetensors").exists() and time.time() < deadline:
        assert worker.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)  # mid-trial 1, after its first checkpoint
    worker.wait()
    assert not (out / "trials/0001/results.json").exists()
    run_sweep(spec, out)
    complete = _check_complete(out)
    retry = next(t for t in complete if t.user_attrs.get("retry_of") is not None)
    assert retry.user_attrs["retry_of"] == 1 and retry.user_attrs["run_dir"] == "trials/0001"  # resumed in place
    failed = [t for t in _study(out).get_trials() if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [1] and failed[0].params == retry.params
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == 4  # the restart drew new points
    assert len(json.loads((out / "trials/0001/results.json").read_text())["resumed_with"]) == 1


def test_two_workers_on_one_storage_finish_one_study_without_duplicates(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(_spec(tmp_path, samples=640)), "--out", str(out), "--workers", "2"]) == 0
    complete = _check_complete(out)
    assert len(_study(out).get_trials()) == 4  # none failed, none surplus
    assert len({json.dumps(t.params, sort_keys=True) for t in _study(out).get_trials()}) == 4  # no point twice
    hosts = {(t.user_attrs["host"], t.user_attrs["pid"]) for t in complete}
    assert len(hosts) == 2  # both workers took trials


def test_a_worker_gives_both_torch_and_the_numba_kernels_its_share_of_threads(tmp_path, monkeypatch):
    # A worker that limited torch alone ran HadamRNN's kernels on every core, in every worker.
    import numba
    import torch

    from hadamrnn import native, sweep

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: nothing to share out")
    seen = {}
    monkeypatch.setattr(sweep, "run_sweep", lambda *args, **kwargs: seen.update(
        torch=torch.get_num_threads(), numba=native.threads()))
    before = torch.get_num_threads(), native.threads()
    try:
        sweep._worker(str(_spec(tmp_path)), str(tmp_path / "out"), None, None, None, threads=1)
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    assert seen == {"torch": 1, "numba": 1}


def test_a_sweep_stopped_with_sigterm_stops_its_workers(tmp_path):
    spec, out = _spec(tmp_path, epochs=2, samples=3200), tmp_path / "out"
    sweep = subprocess.Popen([sys.executable, "-m", "hadamrnn.cli", "sweep", str(spec), "--out", str(out),
                              "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list(out.glob("trials/*/checkpoints/last.safetensors"))) < 2 and time.time() < deadline:
        assert sweep.poll() is None, "the sweep ended before it could be stopped"
        time.sleep(0.05)
    workers = [t.user_attrs["pid"] for t in _study(out).get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    assert len(workers) == 2
    sweep.terminate()
    assert sweep.wait(timeout=60) == 128 + signal.SIGTERM
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # ended, and reaped by the sweep
    run_sweep(spec, out)  # the two stopped trials resume from their checkpoints
    _check_complete(out)


def _one_trial_left_running(tmp_path, host: str, pid: int, **attrs):
    """A sweep of one trial and one seed whose trial 0 another worker (``host``, ``pid``; ``attrs``
    beside them) has taken: its spec, its directory, and trial 0's parameters."""
    spec = tmp_path / "one.yaml"
    spec.write_text(TINY.format(epochs=1, samples=128).replace("trials: 4", "trials: 1").replace("[1, 2]", "[1]"))
    out = tmp_path / "out"
    out.mkdir()
    study = optuna.create_study(study_name="one", storage=f"sqlite:///{out / 'study.db'}", direction="minimize")
    study.set_user_attr("prepared", True)
    trial = study.ask()
    params = {key: dimension.suggest(trial) for key, dimension in SweepSpec.load(spec).space.items()}
    trial.set_user_attr("host", host)
    trial.set_user_attr("pid", pid)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return spec, out, params


def test_a_worker_with_no_trial_left_waits_for_the_others_then_runs_the_seed_runs(tmp_path):
    """The last trial runs in another worker (here a process that dies without finishing it): this
    worker waits instead of leaving the seed runs undone, retries the dead worker's trial, then seeds."""
    other = subprocess.Popen(["sleep", "600"])
    reaper = threading.Thread(target=other.wait)  # reaped once it ends, so that its pid no longer answers
    reaper.start()
    spec, out, params = _one_trial_left_running(tmp_path, HOST, other.pid)
    said = []

    def say(line: str) -> None:
        said.append(line)
        if "waiting" in line:
            other.kill()  # the other worker dies while this one waits for it

    run_sweep(spec, out, say=say)
    reaper.join()
    assert said[0] == "one: waiting for trials 0, run by other workers; the seed runs follow them"
    trials = _study(out, "one").get_trials()
    assert [(t.number, t.state.name) for t in trials] == [(0, "FAIL"), (1, "COMPLETE")]
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == params
    assert (out / "trials/0000/results.json").is_file() and (out / "seeds/seed-1/results.json").is_file()


def test_a_trial_left_running_by_another_boot_is_retried_even_when_its_pid_is_alive_here(tmp_path):
    """A study carried to a fresh machine of the same name keeps the old machine's pids: here the
    recorded pid is alive (it is this process's), but the trial is another boot's, and its stale
    heartbeat decides."""
    spec, out, params = _one_trial_left_running(tmp_path, socket.gethostname(), os.getpid(),
                                                alive_at=time.time() - 2 * STALE_SECONDS)
    run_sweep(spec, out, say=lambda line: None)
    trials = _study(out, "one").get_trials()
    assert [(t.number, t.state.name) for t in trials] == [(0, "FAIL"), (1, "COMPLETE")]
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == params


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(tmp_path):
    """A PostgreSQL server of its own in a temporary directory, run as the postgres user."""
    binaries = Path("/usr/lib/postgresql")
    found = sorted(binaries.glob("*/bin/initdb")) if binaries.is_dir() else []
    initdb = shutil.which("initdb") or (str(found[-1]) if found else None)
    if initdb is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("PostgreSQL server binaries not found (or not root to run them as postgres): "
                    "apt-get update && apt-get install -y postgresql")
    pytest.importorskip("psycopg", reason="pip install 'hadamrnn[sweep-postgresql]'")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    folder = Path(f"/tmp/hadamrnn-pg-{os.getpid()}-{tmp_path.name}")
    folder.mkdir()
    shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_postgres + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                   capture_output=True)
    subprocess.run(as_postgres + [pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgresql_server_serves_two_workers_of_one_study(tmp_path, postgres):
    out = tmp_path / "out"
    assert main(["sweep", str(_spec(tmp_path, samples=640)), "--out", str(out), "--workers", "2",
                 "--storage", postgres]) == 0
    assert not (out / "study.db").exists()
    _check_complete(out, storage=postgres)
    assert main(["sweep", str(out), "--status", "--storage", postgres]) == 0


@pytest.mark.parametrize("text, message", [
    ("base: copy-smoke\n", "at least base and space"),
    ("base: copy-smoke\nspace: {optim.lr: {low: 1, high: 0}}\ntrials: 2\n", "low < high"),
    ("base: copy-smoke\nspace: {optim.lr: {low: 0, high: 1, log: true}}\ntrials: 2\n", "log range needs low > 0"),
    ("base: copy-smoke\nspace: {optim.lr: [0.1]}\ntrials: 0\n", "trials must be a whole number"),
    ("base: copy-smoke\nspace: {optim.lr: [0.1]}\ntrials: 2\nseeds: [1, 1]\n", "distinct"),
    ("base: copy-smoke\nspace: {optim.lr: [0.1]}\ntrials: 2\nsampler: bayes\n", "choose one of"),
    ("base: copy-smoke\nspace: {optim.lr: {low: 0.1, high: 1}}\nsampler: grid\n", "grid sampler takes choices"),
    ("base: copy-smoke\nspace: {model.width: [1, 2]}\ntrials: 2\n", "unknown key model.width"),
    ("base: copy-smoke\nspace: {optim.lr: [0.1, 0.2]}\nsampler: grid\ntrials: 3\n", "a grid of 2 points runs 2"),
    ("base: copy-smoke\nspace: {optim.lr: [0.1]}\ntrials: 2\nepochs: 3\n", "unknown key"),
])
def test_bad_specifications_are_refused_before_any_trial(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        SweepSpec.load(path)


def test_a_directory_runs_one_specification(tmp_path):
    out = tmp_path / "out"
    run_sweep(_spec(tmp_path), out)
    other = tmp_path / "other.yaml"
    other.write_text(TINY.format(epochs=2, samples=128))
    with pytest.raises(SweepError, match="holds the sweep of another specification"):
        run_sweep(other, out)


def test_the_grid_sampler_runs_every_point_once(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("base: copy-smoke\nset: {data.length: 30, optim.epochs: 1, data.train_samples: 64, "
                    "data.val_samples: 32, data.test_samples: 32}\nsampler: grid\n"
                    "space: {model.hidden_size: [16, 32], optim.seed: {low: 1, high: 2}}\n")
    assert SweepSpec.load(path).trials == 4  # the grid's size
    run_sweep(path, tmp_path / "out")
    points = {tuple(sorted(t.params.items())) for t in _study(tmp_path / "out", "grid").get_trials()}
    assert len(points) == 4


def test_fit_stops_where_on_epoch_says_so(tmp_path):
    config = load_config(None, ["data.length=24", "data.train_samples=32", "data.val_samples=16",
                                "data.test_samples=16", "data.batch_size=16", "model.hidden_size=16",
                                "optim.epochs=3"])
    seen = []
    result = fit(config, tmp_path / "run", progress=False, on_epoch=lambda row: seen.append(row["epoch"]) or True)
    assert (result.completed, result.stopped, result.epoch, seen) == (False, "pruned", 1, [1])
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_compare_takes_a_whole_sweep_and_groups_the_best_trial_with_its_seed_runs(tmp_path, capsys):
    out = tmp_path / "out"
    run_sweep(_spec(tmp_path), out)
    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    table = capsys.readouterr().out
    assert "(n = 3)" in table  # the best trial (seed 0, the base config's) and its two seed runs
    assert table.count("\n| ") == 1 + 3 + 1  # header, the three other trials, the group
    assert main(["compare", str(out / "seeds" / "seed-1"), str(out / "seeds" / "seed-2")]) == 0
    assert "(n = 2)" in capsys.readouterr().out  # the seed runs alone


def test_one_worker_with_a_seeded_sampler_runs_the_same_trials_again(tmp_path):
    spec = _spec(tmp_path)
    run_sweep(spec, tmp_path / "a")
    run_sweep(spec, tmp_path / "b")
    params = [[t.params for t in _study(tmp_path / name).get_trials()] for name in ("a", "b")]
    assert params[0] == params[1] and len(params[0]) == 4


def test_a_trial_that_raises_is_failed_with_its_error_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import hadamrnn.sweep as sweep

    real, calls = sweep._train, []

    def flaky(config, run_dir, *args):
        calls.append(run_dir.name)
        if len(calls) == 2:
            raise RuntimeError("a PyTorch error in one trial")
        return real(config, run_dir, *args)

    monkeypatch.setattr(sweep, "_train", flaky)
    out = tmp_path / "out"
    run_sweep(_spec(tmp_path), out)
    trials = _study(out).get_trials()
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"] == "RuntimeError: a PyTorch error in one trial"
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 4  # another trial took its place
