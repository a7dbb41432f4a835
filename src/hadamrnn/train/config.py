"""Typed, validated experiment configuration: data + model + optimisation, from YAML and ``--set``.

Unknown keys and values of the wrong type are errors that name the key and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
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


def _field(default: Any, *, low: float | None = None, high: float | None = None, above: float | None = None,
           choices: tuple | None = None, power_of_two: bool = False) -> Any:
    """A config field with its allowed values, checked by :func:`_check_range` (floats must also be finite).

    ``low``/``high``: inclusive bounds; ``above``: an exclusive lower bound; ``choices``: allowed values."""
    rule = {"low": low, "high": high, "above": above, "choices": choices, "power_of_two": power_of_two}
    return field(default=default, metadata={"rule": rule})


SEED_MAX = 2**32 - 1
_DATASETS = ("copy", "smnist", "pmnist", "imdb", "sst2", "qqp", "har2", "har6", "npz")
_ENGINES = ("auto", "loop", "fused", "kernel")


@dataclass
class DataConfig:
    name: str = _field("copy", choices=_DATASETS)
    batch_size: int = _field(64, low=1, high=1_000_000)
    length: int | None = _field(None, low=21, high=10_000_000)  # copy task: total sequence length T
    train_samples: int | None = _field(None, low=1, high=10**9)  # copy task: samples per epoch
    val_samples: int | None = _field(None, low=1, high=10**9)
    test_samples: int | None = _field(None, low=1, high=10**9)
    seed: int | None = _field(None, low=0, high=SEED_MAX)  # copy task: data seed
    path: str | None = None  # npz: the file
    dir: str | None = None  # data directory the run read its files from (written by train, absolute)


@dataclass
class ModelConfig:
    hidden_size: int = _field(128, low=1, high=2**16, power_of_two=True)
    block_size: int | None = _field(None, low=1, high=2**16, power_of_two=True)
    input_bits: int | None = _field(4, low=2, high=16)
    output_bits: int | None = _field(4, low=2, high=16)
    embedding_dim: int | None = _field(None, low=1, high=2**16)  # token data sets: size of the (full-precision) embedding
    engine: str = _field("auto", choices=_ENGINES)


@dataclass
class OptimConfig:
    lr: float = _field(1e-3, above=0.0, high=10.0)
    latent_lr: float | None = _field(None, low=0.0, high=10.0)  # learning rate of the latent u (None: lr); 0 freezes W
    gamma: float = _field(1.0, above=0.0, high=1.0)  # StepLR factor applied after every epoch
    epochs: int = _field(1, low=1, high=1_000_000)
    seed: int = _field(0, low=0, high=SEED_MAX)
    device: str = "cpu"  # "cpu", or "cuda"/"cuda:N" where PyTorch sees a GPU (the engine's torch path)
    checkpoint_minutes: float = _field(10.0, low=0.0, high=1e6)  # also checkpoint this often in an epoch (0: every step)
    max_steps_per_epoch: int | None = _field(None, low=1, high=10**12)  # cap, for smoke runs


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
        raise ConfigError(f"{key}: expected {annotation}, got {_short(value)}")
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
    raise ConfigError(f"{key}: expected {getattr(annotation, '__name__', annotation)}, got {_short(value)} "
                      f"({type(value).__name__})")


def _check_range(key: str, value: Any, rule: dict) -> None:
    """A ConfigError naming ``key``, the value and what is allowed, unless ``value`` keeps ``rule``."""
    if value is None or isinstance(value, str) and rule["choices"] is None:
        return
    if rule["choices"] is not None:
        if value not in rule["choices"]:
            raise ConfigError(f"{key}: {_short(value)} is not one of {list(rule['choices'])}")
        return
    low, high, above = rule["low"], rule["high"], rule["above"]
    allowed = " and ".join(part for part in (f"> {above}" if above is not None else "",
                                             f">= {low}" if low is not None else "",
                                             f"<= {high}" if high is not None else "") if part)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: {value} is not a finite number; allowed: {allowed}")
    if (low is not None and value < low) or (high is not None and value > high) or (above is not None and value <= above):
        raise ConfigError(f"{key}: {_short(value)} is out of range; allowed: {allowed}")
    if rule["power_of_two"] and value & (value - 1):
        lower = 1 << (value.bit_length() - 1)
        raise ConfigError(f"{key}: {value} is not a power of two; nearest: {lower} or {2 * lower}")


def _short(value: Any) -> str:
    """A repr cut short: a value from a hostile file may be huge or deeply nested (YAML aliases)."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def _section(name: str, values: Any):
    cls = _SECTIONS[name]
    if not isinstance(values, dict):
        raise ConfigError(f"{name}: expected a mapping of keys, got {_short(values)}")
    hints = typing.get_type_hints(cls)
    fields_by_name = {f.name: f for f in dataclasses.fields(cls)}
    checked = {}
    for key, value in values.items():
        if key not in hints:
            shown = key if isinstance(key, str) and len(key) <= 60 else _short(key)
            raise ConfigError(f"unknown key {name}.{shown}; valid keys in {name}: {list(fields_by_name)}")
        checked[key] = _check_type(f"{name}.{key}", value, hints[key])
        if "rule" in fields_by_name[key].metadata:
            _check_range(f"{name}.{key}", checked[key], fields_by_name[key].metadata["rule"])
    section = cls(**checked)
    if name == "model" and section.block_size is not None and section.block_size > section.hidden_size:
        raise ConfigError(f"model.block_size: {section.block_size} exceeds model.hidden_size {section.hidden_size}; "
                          f"use a power of two <= {section.hidden_size}")
    if name == "optim" and not re.fullmatch(r"cpu|cuda(:\d+)?", section.device):
        raise ConfigError(f"optim.device: {_short(section.device)} is not a device; use cpu, cuda or cuda:N")
    return section


def from_dict(values: dict) -> ExperimentConfig:
    if not isinstance(values, dict):
        raise ConfigError(f"a config is a mapping with sections {list(_SECTIONS)}, got {type(values).__name__}")
    unknown = set(values) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {_short(sorted(map(str, unknown)))}; valid sections: {list(_SECTIONS)}")
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
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from error
        if values is None:
            raise ConfigError(f"{path} is empty; a config needs at least a data section, e.g. "
                              f"'data: {{name: copy}}' (hadamrnn configs show copy-smoke prints a complete one)")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a mapping with sections {list(_SECTIONS)}, got a "
                              f"{type(values).__name__}")
    return from_dict(apply_overrides(values, overrides or []))

