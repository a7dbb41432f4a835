"""The models that ship with hadamrnn: each loads by name, reproduces the logits recorded for its
stored inputs (and, with the real data, its recorded test metric), and is in the built wheel."""

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from hadamrnn import load_pretrained, pretrained
from hadamrnn.train import load_trained

NAMES = pretrained.names()


def test_models_ship():
    assert NAMES, "no pretrained model in src/hadamrnn/pretrained"


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_model_reproduces_its_recorded_logits(name):
    entry = pretrained.describe(name)
    assert entry["command"].startswith("hadamrnn ") and entry["description"]
    model = load_pretrained(name)
    with torch.no_grad():
        logits = model(entry["check"]["inputs"])
    torch.testing.assert_close(logits, entry["check"]["logits"], rtol=1e-4, atol=1e-4)
    same, config, _ = load_trained(f"pretrained:{name}")  # the name wherever a run directory is taken
    assert config.data.dir is None  # not the packaging machine's data directory
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), model.state_dict().values()))


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_model_reaches_its_recorded_test_metric_on_the_real_data(name, real_data):
    from hadamrnn.data import DATASETS
    from hadamrnn.train import evaluate, load_splits

    model, config, info = load_trained(f"pretrained:{name}")
    folders = sorted({Path(f.path).parts[0] for f in DATASETS[config.data.name].files})
    splits = load_splits(config, real_data(*folders) if folders else None)
    result = evaluate(model, splits.test, info, 256)
    assert result["metric"] == pytest.approx(pretrained.describe(name)["results"]["test_metric"], abs=2e-3)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="shipped: " + NAMES[0]):
        load_pretrained("no-such-model")


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building a wheel needs setuptools")
def test_the_wheel_holds_the_shipped_models_configs_and_templates(tmp_path):
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("hadamrnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in NAMES:
        assert f"hadamrnn/pretrained/{name}.safetensors" in names
    assert "hadamrnn/configs/pmnist.yaml" in names and "hadamrnn/deploy/templates/Makefile" in names


@pytest.mark.parametrize("command", [["eval"], ["size"], ["export", "-o", "x.hrnn"]])
def test_an_overlong_pretrained_name_is_a_short_error(capsys, command):
    """A 300-character name gave "File name too long" from the file system in `size`."""
    from hadamrnn.cli import main

    assert main([command[0], "pretrained:" + "x" * 300, *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "no pretrained model 'xxx" in err and "File name too long" not in err and len(err) < 400, err


def test_the_paper_recipe_model_reaches_the_papers_level(real_data):
    """`hadamrnn eval pretrained:pmnist-paper` on the real pMNIST test set: at least 0.953."""
    from hadamrnn.train import evaluate, load_splits

    model, config, info = load_trained("pretrained:pmnist-paper")
    splits = load_splits(config, real_data("mnist"))
    assert evaluate(model.eval(), splits.test, info, 1000)["metric"] >= 0.953
