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
