"""Run directories under kills and tampering: what is left is cleaned, repaired or refused clearly."""

import json

import pytest
import torch

from hadamrnn.cli import main
from hadamrnn.train import checkpoint_path, fit, load_config
from hadamrnn.train.checkpoint import load_checkpoint, save_checkpoint

SMALL = ["data.length=24", "data.train_samples=64", "data.val_samples=16", "data.test_samples=16",
         "data.batch_size=16", "model.hidden_size=16", "optim.epochs=2", "optim.seed=3"]


def _stopped_run(tmp_path):
    run = tmp_path / "run"
    assert not fit(load_config(None, SMALL), run, progress=False, stop_after_steps=6).completed  # epoch 2, step 2
    return run


def test_stale_temporaries_of_a_kill_are_removed_on_resume(tmp_path):
    run = _stopped_run(tmp_path)
    stale = [run / "checkpoints" / ".last.safetensors.k3j2.tmp", run / ".metrics.csv.x9.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    assert fit(None, run, resume=True, progress=False).completed
    assert not any(path.exists() for path in stale)


def test_a_torn_last_metrics_line_is_dropped_on_resume_and_said(tmp_path, capsys):
    run = _stopped_run(tmp_path)
    with open(run / "metrics.jsonl", "a") as stream:
        stream.write('{"epoch": 2, "step": 8, "train_lo')  # killed while appending
    assert fit(None, run, resume=True, progress=False).completed
    assert "dropped an incomplete last line" in capsys.readouterr().err
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_damaged_metrics_line_elsewhere_is_an_error_naming_file_and_line(tmp_path):
    run = _stopped_run(tmp_path)
    (run / "metrics.jsonl").write_text("not json\n" + (run / "metrics.jsonl").read_text())
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 1: unreadable"):
        fit(None, run, resume=True, progress=False)


@pytest.mark.parametrize("which, command", [("best", "eval"), ("last", "train")])
def test_a_checkpoint_without_its_config_is_refused_by_name(tmp_path, capsys, which, command):
    run = _stopped_run(tmp_path)
    fit(None, run, resume=True, progress=False)
    path = checkpoint_path(run, which)
    payload = load_checkpoint(path)
    del payload["config"], payload["format_version"]
    save_checkpoint(path, payload)
    arguments = ["eval", str(run)] if command == "eval" else ["train", "--resume", "--out", str(run)]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert "lacks ['config']" in err and "Traceback" not in err


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_refused(tmp_path, capsys):
    run = _stopped_run(tmp_path)
    fit(None, run, resume=True, progress=False)
    path = checkpoint_path(run, "best")
    payload = load_checkpoint(path)
    payload["model"]["input.weight"] = torch.zeros(3, 3)
    del payload["format_version"]
    save_checkpoint(path, payload)
    assert main(["eval", str(run)]) == 2
    assert "does not match its configuration" in capsys.readouterr().err


def test_ctrl_c_during_start_up_prints_no_traceback(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the data load (start-up, before the training loop's own handler): no traceback,
    exit 130, and the message says that nothing was saved."""
    import hadamrnn.train.loop as loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "load_splits", interrupted)
    assert main(["train", "copy-smoke", "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "interrupted before the first checkpoint: nothing was saved" in err and "Traceback" not in err
    monkeypatch.setattr("hadamrnn.cli._train", interrupted)  # anywhere else in a command
    assert main(["train", "copy-smoke", "--out", str(tmp_path / "run")]) == 130
    assert "hadamrnn train: interrupted" in capsys.readouterr().err


def _train_command(run, *extra):
    import sys

    return [sys.executable, "-m", "hadamrnn.cli", "train", "copy-smoke", "--out", str(run), "--set", "data.length=24",
            "--set", "data.train_samples=64000", "--set", "data.batch_size=16", "--set", "model.hidden_size=16",
            "--set", "optim.checkpoint_minutes=0", *extra]


def test_one_run_per_directory_and_a_killed_holder_blocks_nothing(tmp_path):
    """Two `train` on one --out: exactly one runs, the other (and a --resume) exits non-zero naming the
    holder; after a SIGKILL of the holder, --resume continues."""
    import subprocess
    import time

    run = tmp_path / "run"
    holder = subprocess.Popen(_train_command(run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint_path(run).exists() and time.time() < deadline and holder.poll() is None:
        time.sleep(0.05)
    assert holder.poll() is None, "the first run ended before the test could start a second"
    second = subprocess.run(_train_command(run), capture_output=True, text=True, timeout=120)
    resume = subprocess.run(_train_command(run)[:4] + ["--resume", "--out", str(run)], capture_output=True, text=True,
                            timeout=120)
    for refused in (second, resume):
        assert refused.returncode == 2 and f"in use by a live training run (pid {holder.pid} on " in refused.stderr
        assert "Traceback" not in refused.stderr
    assert holder.poll() is None  # the holder trains on, alone
    holder.kill()
    holder.wait()
    assert (run / ".lock").exists()  # left by the kill, and locked by nobody
    state = load_checkpoint(checkpoint_path(run))["state"]
    resumed = fit(None, run, resume=True, progress=False, stop_after_steps=state["global_step"] + 2)
    assert resumed.stopped == "stopped" and not (run / ".lock").exists()  # resumed, two more steps, released


def test_a_run_that_diverges_stops_at_the_step_naming_it_and_leaves_the_last_checkpoint_finite(tmp_path, capsys):
    """One training sample near float32's limit overflows the states when its batch comes (the 4th of
    epoch 1): the run stops before that step, exits non-zero naming it, and `last` holds step 3."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 32, 4)).astype(np.float32)
    y = (x[:, -1, 0] > 0).astype(np.int64)
    x[94] = 3e38  # shuffled into batch 4 of epoch 1 with optim.seed=0
    path = tmp_path / "big.npz"
    np.savez(path, x_train=x[:160], y_train=y[:160], x_val=x[160:180], y_val=y[160:180], x_test=x[180:], y_test=y[180:])
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{name: npz, path: {path}, batch_size: 16}}\nmodel: {{hidden_size: 16}}\n"
                      f"optim: {{epochs: 2, seed: 0, checkpoint_minutes: 0}}\n")
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "training diverged at epoch 1, step 4 (global step 4): the loss is nan" in err and "Traceback" not in err
    assert "is intact and resumable" in err
    last = load_checkpoint(checkpoint_path(run))  # refuses non-finite tensors: loading it proves them finite
    assert last["state"]["global_step"] == 3
    assert main(["train", "--resume", "--out", str(run)]) == 2  # the same batches: the same stop
    assert "global step 4" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["eval", "{run}"], ["export", "{run}", "-o", "{tmp}/m.hrnn"],
                                     ["size", "{run}"], ["train", "--resume", "--out", "{run}"]])
def test_a_checkpoint_with_non_finite_weights_is_refused_by_name(tmp_path, capsys, command):
    run = _stopped_run(tmp_path)
    for which in ("best", "last"):
        payload = load_checkpoint(checkpoint_path(run, which))
        payload["model"]["output.weight"][0, 0] = float("nan")
        save_checkpoint(checkpoint_path(run, which), payload)
    assert main([word.format(run=run, tmp=tmp_path) for word in command]) == 2
    err = capsys.readouterr().err
    assert "holds NaN or infinite values in model/output.weight" in err and "Traceback" not in err
    assert not (tmp_path / "m.hrnn").exists()
