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
    overridden = load_config(path, ["optim.lr=2e-4", "data.name=npz", "data.path=1e5"])
    assert overridden.optim.lr == 2e-4 and overridden.data.path == "1e5"  # numbers only where a number is meant


def test_each_data_set_takes_its_own_keys_and_a_null_keeps_the_default(tmp_path):
    """data: keys by set (hadamrnn.data.DATASETS); configs written when every set listed every key,
    null where unused, still load."""
    with pytest.raises(ConfigError, match=r"unknown key data.length; valid keys in data: \['name', 'batch_size', "
                                          r"'dir'\] \(data set 'har6' takes no other keys\)"):
        load_config(_write(tmp_path, "data: {name: har6, length: 200}\n"))
    old = load_config(_write(tmp_path, "data: {name: har6, batch_size: 64, length: null, train_samples: null, "
                                       "val_samples: null, test_samples: null, seed: null, path: null, dir: null}\n"))
    assert vars(old.data) == {
        "name": "har6", "batch_size": 64, "dir": None}
    copy = load_config(_write(tmp_path, "data: {name: copy, length: null, seed: 3}\n")).data
    assert (copy.length, copy.train_samples, copy.seed) == (1000, 512_000, 3)  # the paper's setting by default


@pytest.mark.parametrize("text, overrides, message", [
    ("optim: {lr: 1e-3, epoch: 3}\n", [], r"unknown key optim.epoch; valid keys in optim: \[.*'epochs'"),
    ("optim: {lr: fast}\n", [], "optim.lr: expected float, got 'fast'"),
    ("data: {batch_size: 1.5}\n", [], "data.batch_size: expected int"),
    ("training: {}\n", [], "unknown section"),
    ("data: [1, 2]\n", [], "expected a mapping"),
    ("{}\n", ["optim.lr"], "expected section.key=value"),
    ("{}\n", ["optimizer.lr=1"], "unknown section 'optimizer'"),
    ("{}\n", ["model.hidden=3"], "unknown key model.hidden"),
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


@pytest.mark.parametrize("text, message", [
    ("data: {batch_size: 0}\n", r"data.batch_size: 0 is out of range; allowed: >= 1 and <= 1000000"),
    ("data: {batch_size: -5}\n", r"data.batch_size: -5 is out of range"),
    ("optim: {max_steps_per_epoch: 0}\n", r"optim.max_steps_per_epoch: 0 is out of range"),
    ("optim: {device: tpu9}\n", r"optim.device: 'tpu9' is not a device; use cpu, cuda or cuda:N"),
    ("model: {hidden_size: 1073741824}\n", r"model.hidden_size: 1073741824 is out of range; allowed: >= 1 and <= 65536"),
    ("model: {hidden_size: 100}\n", r"model.hidden_size: 100 is not a power of two; nearest: 64 or 128"),
    ("model: {hidden_size: 64, block_size: 128}\n", r"model.block_size: 128 exceeds model.hidden_size 64"),
    ("model: {engine: warp}\n", r"model.engine: 'warp' is not one of"),
    ("data: {name: mnist}\n", r"data.name: 'mnist' is not a data set; choose one of .*'smnist'"),
    ("optim: {lr: .inf}\n", r"optim.lr: inf is not a finite number; allowed: > 0.0 and <= 10.0"),
    ("optim: {gamma: .nan}\n", r"optim.gamma: nan is not a finite number"),
    ("optim: {latent_lr: -1}\n", r"optim.latent_lr: -1.0 is out of range; allowed: >= 0.0"),
    ("optim: {epochs: 0}\n", r"optim.epochs: 0 is out of range; allowed: >= 1"),
    ("data: {seed: -1}\n", r"data.seed: -1 is out of range; allowed: >= 0 and <= 4294967293"),
    (f"optim: {{seed: {2**64}}}\n", r"optim.seed: 18446744073709551616 is out of range"),
    ("optim: {checkpoint_minutes: -1}\n", r"optim.checkpoint_minutes: -1.0 is out of range"),
    ("[1, 2]\n", r"a config is a mapping with sections \['data', 'model', 'optim'\], got a list"),
    ("3\n", r"a config is a mapping .* got a int"),
    ("", r"is empty; a config needs at least a data section"),
    ("# only a comment\n", r"is empty"),
])
def test_hostile_values_name_key_value_and_range(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_a_yaml_alias_bomb_gives_a_short_error_at_once(tmp_path):
    import time

    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join(['*' + previous] * 10)}]")
    text = "\n".join(lines) + "\nmodel: {hidden_size: *i}\n"  # 10^9 leaves if expanded
    started = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert time.perf_counter() - started < 5
    assert len(str(error.value)) < 500


def test_every_error_is_a_config_error_not_a_traceback():
    """Every field of every section and model family set to values of every kind: each either
    loads or raises ConfigError."""
    from hadamrnn.data import DATASETS
    from hadamrnn.models import FAMILIES
    from hadamrnn.train.config import OptimConfig, from_dict

    values = [None, 0, -1, 1, 3, 2**70, 0.5, -0.0, float("inf"), float("nan"), "", "x" * 10_000, [1], {"a": 1}, True]
    sections = [("optim", OptimConfig, {})] + [("data", dataset.options, {"name": name}) for name, dataset in DATASETS.items()]
    sections += [("model", family.options, {"name": name}) for name, family in FAMILIES.items()]
    cases = 0
    for section, cls, base in sections:
        for field in cls.__dataclass_fields__:
            for value in values:
                cases += 1
                try:
                    from_dict({"data": {"name": "copy"}, **{section: {**base, field: value}}})
                except ConfigError as error:
                    assert len(str(error)) < 1000
    assert cases > 500


@pytest.mark.parametrize("text, message", [
    ("model: " + "[" * 100_000 + "]" * 100_000 + "\n", "YAML nested more than 32 levels deep"),
    ("model: " + "{a: " * 40 + "1" + "}" * 40 + "\n", "YAML nested more than 32 levels deep"),
    ("model: &a [*a]\n", "YAML nested more than 32 levels deep"),  # a cycle, which safe_load builds
])
def test_deep_and_cyclic_yaml_is_one_short_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_config(_write(tmp_path, text))
    assert len(str(error.value)) < 500


def test_a_config_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: {hidden_size: 16}  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=f"{path}: not UTF-8 text"):
        load_config(path)


def test_a_config_file_over_a_mebibyte_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(ConfigError, match="a config holds at most 1048576"):
        load_config(path)


def test_model_switches_the_family_of_a_shipped_config_keeping_the_keys_it_takes(tmp_path, capsys):
    from hadamrnn.cli import main

    gru = load_config("har6", family="gru")
    assert gru.model.name == "gru" and gru.model.hidden_size == load_config("har6").model.hidden_size
    lstm = load_config("imdb", ["model.hidden_size=32"], family="lstm")  # --set applies after
    assert (lstm.model.hidden_size, lstm.model.embedding_dim) == (32, load_config("imdb").model.embedding_dim)
    assert load_config("har6", family="hadamrnn") == load_config("har6")
    with pytest.raises(ConfigError, match="--model 'rnn': not a model family"):
        load_config("har6", family="rnn")
    run = str(tmp_path / "run")
    small = ["--set", "data.length=24", "--set", "data.train_samples=32", "--set", "data.val_samples=16",
             "--set", "data.test_samples=16", "--set", "data.batch_size=16", "--set", "optim.epochs=1"]
    assert main(["train", "copy-smoke", "--model", "fastgrnn", "--out", run, *small]) == 0
    assert "model:\n  name: fastgrnn" in (tmp_path / "run" / "config.yaml").read_text()
    assert main(["train", "--resume", "--out", run, "--model", "lstm"]) == 2
    assert "a resumed run keeps its own" in capsys.readouterr().err
