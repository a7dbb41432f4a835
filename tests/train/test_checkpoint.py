import pytest
import torch

from hadamrnn.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"x": torch.arange(3)})
    assert torch.equal(load_checkpoint(path)["x"], torch.arange(3))


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
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
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_damaged_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"x": 1})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    torch.save({"x": 1}, path)
    with pytest.raises(CheckpointError, match="not a hadamrnn checkpoint"):
        load_checkpoint(path)
    torch.save({"format_version": 99}, path)
    with pytest.raises(CheckpointError, match="Upgrade"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
