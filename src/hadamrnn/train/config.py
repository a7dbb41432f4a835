"""Typed, validated experiment configuration: data + model + optimisation, from YAML and ``--set``.

Unknown keys and values of the wrong type are errors that name the key and what is valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DataConfig", "ModelConfig", "OptimConfig", "ExperimentConfig", "load_config", "ConfigError",
           "shipped_configs", "config_text"]


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type."""


@dataclass
class DataConfig:
    name: str = "copy"
    batch_size: int = 64
    length: int | None = None  # copy task: total sequence length T
    train_samples: int | None = None  # copy task: samples per epoch
    val_samples: int | None = None
    test_samples: int | None = None
    seed: int | None = None  # copy task: data seed
    path: str | None = None  # npz: the file
    dir: str | None = None  # data directory the run read its files from (written by train, absolute)


@dataclass
class ModelConfig:
    hidden_size: int = 128
    block_size: int | None = None
    input_bits: int | None = 4
    output_bits: int | None = 4
    embedding_dim: int | None = None  # token data sets: size of the (full-precision) embedding
    engine: str = "auto"


@dataclass
class OptimConfig:
    lr: float = 1e-3
    latent_lr: float | None = None  # learning rate of the recurrent latent u (None: lr); 0 freezes W
    gamma: float = 1.0  # StepLR factor applied after every epoch
    epochs: int = 1
    seed: int = 0
    device: str = "cpu"  # "cpu", or "cuda"/"cuda:N" where PyTorch sees a GPU (the engine's torch path)
    checkpoint_minutes: float = 10.0  # also checkpoint within an epoch this often (0: after every step)
    max_steps_per_epoch: int | None = None  # cap, for smoke runs


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict:
        return asdict(self)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig}


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` where lossless (int → float), else a ConfigError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(key, value, option)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {annotation}, got {value!r}")
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation is str and isinstance(value, str):
        return value
    if annotation is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected {getattr(annotation, '__name__', annotation)}, got {value!r} "
                      f"({type(value).__name__})")


def _section(name: str, values: Any):
    cls = _SECTIONS[name]
    if not isinstance(values, dict):
        raise ConfigError(f"{name}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    checked = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"unknown key {name}.{key}; valid keys in {name}: {valid}")
        checked[key] = _check_type(f"{name}.{key}", value, hints[key])
    return cls(**checked)


def from_dict(values: dict) -> ExperimentConfig:
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"a config is a mapping with sections {list(_SECTIONS)}, got {type(values).__name__}")
    unknown = set(values) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; valid sections: {list(_SECTIONS)}")
    return ExperimentConfig(**{name: _section(name, values.get(name, {})) for name in _SECTIONS})


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """``["optim.lr=1e-3", ...]`` applied to a config mapping; values parsed as YAML scalars."""
    values = {k: (dict(v) if isinstance(v, dict) else v if v is not None else {}) for k, v in (values or {}).items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. optim.lr=1e-3")
        section, name = parts
        if section not in _SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; valid sections: {list(_SECTIONS)}")
        value = yaml.safe_load(raw) if raw.strip() else None
        if not isinstance(values.setdefault(section, {}), dict):
            raise ConfigError(f"{section}: expected a mapping of keys, got {values[section]!r}")
        values[section][name] = value
    return values


def shipped_configs() -> dict[str, str]:
    """The configs shipped in the package, ``{name: first comment line}`` (``hadamrnn configs``)."""
    folder = resources.files("hadamrnn") / "configs"
    described = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            lines = entry.read_text().splitlines()
            described[entry.name[:-5]] = lines[0].lstrip("# ").strip() if lines else ""
    return described


def config_text(name_or_path: str | Path) -> tuple[str, str]:
    """``(YAML text, where it came from)`` of a config file path, or of a shipped config by name."""
    path = Path(name_or_path)
    if path.is_file():
        return path.read_text(), str(path)
    name = str(name_or_path)
    if path.suffix in (".yaml", ".yml") or "/" in name:
        raise ConfigError(f"config file {path} does not exist")
    shipped = resources.files("hadamrnn") / "configs" / f"{name}.yaml"
    if shipped.is_file():
        return shipped.read_text(), f"shipped config {name!r}"
    raise ConfigError(f"config {name!r} is neither a file nor a shipped config; shipped configs: "
                      f"{', '.join(shipped_configs())} (list them with: hadamrnn configs)")


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config file or a shipped config by name (or start from defaults when ``path`` is
    None) and apply ``--set`` overrides."""
    values: dict = {}
    if path is not None:
        text, path = config_text(path)
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from error
    return from_dict(apply_overrides(values, overrides or []))

