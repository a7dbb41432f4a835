import pytest

from hadamrnn.train.config import ConfigError, load_config


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides(tmp_path):
    path = _write(tmp_path, "data: {name: pmnist, batch_size: 100}\noptim: {lr: 1e-3, epochs: 2}\n")
    config = load_config(path, ["optim.gamma=0.98", "model.block_size=16", "model.input_bits=null"])
    assert config.data.name == "pmnist" and config.optim.lr == 1e-3 and config.optim.gamma == 0.98
    assert config.model.block_size == 16 and config.model.input_bits is None
    overridden = load_config(path, ["optim.lr=2e-4", "data.path=1e5"])
    assert overridden.optim.lr == 2e-4 and overridden.data.path == "1e5"  # numbers only where a number is meant


@pytest.mark.parametrize("text, overrides, message", [
    ("optim: {lr: 1e-3, epoch: 3}\n", [], r"unknown key optim.epoch; valid keys in optim: \[.*'epochs'"),
    ("optim: {lr: fast}\n", [], "optim.lr: expected float, got 'fast'"),
    ("data: {batch_size: 1.5}\n", [], "data.batch_size: expected int"),
    ("training: {}\n", [], "unknown section"),
    ("data: [1, 2]\n", [], "expected a mapping"),
    ("", ["optim.lr"], "expected section.key=value"),
    ("", ["optimizer.lr=1"], "unknown section 'optimizer'"),
    ("", ["model.hidden=3"], "unknown key model.hidden"),
    ("data: {name: copy\n", [], "not valid YAML"),
])
def test_config_errors_name_the_key(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), overrides)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_every_shipped_config_loads():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        load_config(path)
