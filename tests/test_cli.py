"""The command line's small promises: version, shipped configs, clear errors, files others can read."""

import os
import stat

import yaml

from hadamrnn import __version__
from hadamrnn.cli import main
from hadamrnn.train import load_config


def test_version_and_shipped_configs(capsys):
    try:
        main(["--version"])
    except SystemExit as exit:
        assert exit.code == 0
    assert capsys.readouterr().out.strip() == f"hadamrnn {__version__}"
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out
    assert "copy-smoke" in listing and "pmnist" in listing
    from hadamrnn.train.config import shipped_configs

    described = shipped_configs()
    assert all(sentence.endswith(".") for sentence in described.values()), described  # whole first sentences
    assert described["pmnist-frozen"].endswith("lr 3e-3 decaying by 0.7 per epoch.")
    assert " ".join(listing.split()).count("decaying by 0.7 per epoch.") == 2  # wrapped, not cut
    assert main(["configs", "show", "pmnist"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["name"] == "pmnist"
    assert load_config("pmnist").model.hidden_size == 512  # a bare name is a shipped config
    assert main(["configs", "show", "nope"]) == 2
    assert "hadamrnn configs" in capsys.readouterr().err


def test_a_run_that_fails_at_start_up_writes_no_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HADAMRNN_DATA", raising=False)
    assert main(["train", "har6", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "HAPT_RawData.zip" in capsys.readouterr().err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_qqp_error_counts_only_the_missing_files(tmp_path):
    from hadamrnn.data import DataError, load_data

    (tmp_path / "bert-base-uncased").mkdir()
    (tmp_path / "bert-base-uncased" / "vocab.txt").write_text("[PAD]\n")
    try:
        load_data("qqp", tmp_path)
    except DataError as error:
        message = str(error)
    assert "missing 2 of 3 file(s)" in message and "[present]" in message and message.count("[MISSING]") == 2


def test_predict_names_the_runtime_a_directory_needs(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "x.txt").write_text("1 2\n")
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "x.txt"), "--runtime", "numpy"]) == 2
    assert "is a directory without a model.hrnn" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "x.txt"), "--runtime", "numpy-int"]) == 2
    assert "--target c" in capsys.readouterr().err


def test_written_files_follow_the_umask(tmp_path):
    from hadamrnn.atomic import atomic_write_bytes

    previous = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_calibration_samples_must_be_positive(tmp_path, capsys):
    import pytest

    for bad in ("-5", "0", "many"):
        with pytest.raises(SystemExit) as exit:
            main(["export", str(tmp_path), "--target", "c", "-o", str(tmp_path / "c"), "--calibration-samples", bad])
        assert exit.value.code == 2
        assert "expected a positive whole number" in capsys.readouterr().err


def test_predict_takes_a_run_directory_and_a_pretrained_name(tmp_path, capsys):
    """What `hadamrnn predict` prints for a run equals what it prints for that run's export; a shipped
    model is one name away. numpy-int needs the C export and says how to make it."""
    import numpy as np

    from hadamrnn.train import fit, load_config

    run = tmp_path / "run"
    fit(load_config(None, ["data.length=24", "data.train_samples=32", "data.val_samples=16", "data.test_samples=16",
                           "data.batch_size=16", "model.hidden_size=16"]), run, progress=False)
    rng = np.random.default_rng(0)
    lines = tmp_path / "in.txt"
    lines.write_text("".join(" ".join(map(str, np.eye(10, dtype=int)[rng.integers(0, 10, 24)].reshape(-1))) + "\n"
                             for _ in range(5)))
    assert main(["export", str(run), "-o", str(tmp_path / "m.hrnn")]) == 0
    capsys.readouterr()
    for runtime in ("numpy", "torch"):
        assert main(["predict", str(tmp_path / "m.hrnn"), str(lines), "--runtime", runtime]) == 0
        exported = capsys.readouterr().out
        assert main(["predict", str(run), str(lines), "--runtime", runtime]) == 0
        assert capsys.readouterr().out == exported and len(exported.splitlines()) == 5
    har = tmp_path / "har.txt"
    har.write_text("".join(" ".join(f"{v:.4f}" for v in rng.normal(size=128 * 9)) + "\n" for _ in range(3)))
    assert main(["predict", "pretrained:har6-q8", str(har)]) == 0
    answers = capsys.readouterr().out.splitlines()
    assert len(answers) == 3 and all(len(a.split()) == 7 for a in answers)  # a class and 6 logits
    assert main(["predict", "pretrained:har6-q8", str(har), "--runtime", "numpy-int"]) == 2
    assert "hadamrnn export pretrained:har6-q8 --target c -o DIR" in capsys.readouterr().err
