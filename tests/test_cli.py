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
    assert "numpy-int" in capsys.readouterr().err
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
