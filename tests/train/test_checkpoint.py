import pickle
import subprocess
import sys

import pytest
import torch

from hadamrnn.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_of_nested_state(tmp_path):
    path = tmp_path / "c.safetensors"
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    payload = {"x": torch.arange(3), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
               "state": {"best": None, "seconds": 1.5, "name": "run"}}
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["x"], torch.arange(3)) and torch.equal(loaded["rng"], payload["rng"])
    assert loaded["state"] == payload["state"]
    assert set(loaded["optimizer"]["state"]) == {0, 1}  # integer keys survive JSON
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(loaded["optimizer"]["state"][0][key], value)
    torch.optim.Adam(model.parameters()).load_state_dict(loaded["optimizer"])


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"step": 1})

    import os

    real_fsync = os.fsync

    def die(fd):  # the process dies after part of the new file was written, before the rename
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "fsync", die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "big": torch.zeros(100_000)})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]  # no temporary left behind


def test_damaged_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"x": 1})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not a hadamrnn checkpoint"):
        load_checkpoint(path)
    save_file({"x": torch.zeros(1)}, path, metadata={"hadamrnn": '{"format_version": 99}'})
    with pytest.raises(CheckpointError, match="Upgrade"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.safetensors")


class _Payload:
    """Unpickling this creates the marker file: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious_run(tmp_path, disguise: bool):
    """A run directory whose checkpoints are pickles that create ``marker`` when loaded: as the old
    ``.pt`` names, or disguised under the new names."""
    from hadamrnn.train import fit, load_config

    run, marker = tmp_path / "run", tmp_path / "marker"
    fit(load_config(None, ["data.length=24", "data.train_samples=32", "data.val_samples=16", "data.test_samples=16",
                           "data.batch_size=16", "model.hidden_size=16"]), run, progress=False)
    evil = pickle.dumps({"format_version": 1, "config": {}, "model": _Payload(marker)})
    for which in ("last", "best"):
        (run / "checkpoints" / f"{which}.safetensors").unlink()
        (run / "checkpoints" / (f"{which}.safetensors" if disguise else f"{which}.pt")).write_bytes(evil)
    return run, marker


@pytest.mark.parametrize("disguise", [False, True])
def test_a_malicious_checkpoint_runs_no_code_in_any_command(tmp_path, disguise):
    run, marker = _malicious_run(tmp_path, disguise)
    pickle.loads(pickle.dumps(_Payload(tmp_path / "probe")))  # the payload works when unpickled...
    assert (tmp_path / "probe").exists()
    name = "best.safetensors" if disguise else "best.pt"
    commands = [["eval", str(run)], ["eval", str(run / "checkpoints" / name)], ["size", str(run)],
                ["export", str(run), "-o", str(tmp_path / "m.hrnn")],
                ["export", str(run), "--target", "c", "-o", str(tmp_path / "c")],
                ["train", "--resume", "--out", str(run)]]
    for command in commands:  # ...and no command unpickles it
        done = subprocess.run([sys.executable, "-m", "hadamrnn.cli", *command], capture_output=True, text=True)
        assert done.returncode == 2, (command, done.stderr)
        expected = "not a readable checkpoint" if disguise else "pickled checkpoint"
        assert expected in done.stderr and "Traceback" not in done.stderr, (command, done.stderr)
        assert not marker.exists(), command


def _rewrite_metadata(path, change):
    """Rewrite a checkpoint's JSON metadata with ``change(text) -> text``, its tensors kept."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as stored:
        metadata, tensors = stored.metadata(), {name: stored.get_tensor(name) for name in stored.keys()}
    save_file(tensors, str(path), metadata={"hadamrnn": change(metadata["hadamrnn"])})


DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_METADATA = {
    "format_version a string": lambda text: text.replace('"format_version": 2', '"format_version": "2"'),
    "format_version null": lambda text: text.replace('"format_version": 2', '"format_version": null'),
    "format_version a list": lambda text: text.replace('"format_version": 2', '"format_version": [2]'),
    "format_version true": lambda text: text.replace('"format_version": 2', '"format_version": true'),
    "nested 100,000 deep": lambda text: text.replace('"format_version": 2', f'"format_version": 2, "x": {DEEP}'),
    "nested 40 deep": lambda text: text.replace('"format_version": 2', '"format_version": 2, "x": ' + "[" * 40 + "]" * 40),
    "info with 4e6 classes": lambda text: text.replace('"num_classes": 9', '"num_classes": 4000000'),
    "info with a string of classes": lambda text: text.replace('"num_classes": 9', '"num_classes": "9"'),
    "info not a mapping": lambda text: text.replace('"info": {', '"info": [{').replace('"transform": null}', '"transform": null}]'),
}


@pytest.mark.parametrize("case", list(HOSTILE_METADATA))
def test_hostile_checkpoint_metadata_is_one_clear_error_in_every_command(tmp_path, capsys, case):
    """The probe's tracebacks (TypeError, RecursionError) and its 2.2 GB model for 4e6 classes: each
    command now exits 2 with one line naming the file, having allocated nothing big."""
    import resource

    from hadamrnn.cli import main
    from hadamrnn.train import fit, load_config

    run = tmp_path / "run"
    fit(load_config(None, ["data.length=24", "data.train_samples=32", "data.val_samples=16", "data.test_samples=16",
                           "data.batch_size=16", "model.hidden_size=16"]), run, progress=False)
    for which in ("best", "last"):
        _rewrite_metadata(run / "checkpoints" / f"{which}.safetensors", HOSTILE_METADATA[case])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for command in (["eval", str(run)], ["size", str(run)], ["export", str(run), "-o", str(tmp_path / "m.hrnn")],
                    ["train", "--resume", "--out", str(run)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "checkpoints" in err and "Traceback" not in err and len(err) < 1000, (command, err)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000  # KiB
