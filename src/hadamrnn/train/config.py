"""Typed, validated experiment configuration: data + model + optimisation, from YAML and ``--set``.

Unknown keys and values of the wrong type are errors that name the key and what is valid.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from ..data import DataOptions, data_options
from ..models import ModelOptions, model_options
from ..options import SEED_MAX, OptionError, option, parse_options, short_repr as _short
from ..untrusted import parse_yaml

__all__ = ["OptimConfig", "ExperimentConfig", "load_config", "ConfigError", "shipped_configs",
           "config_text"]

ConfigError = OptionError  # every configuration error names its key (hadamrnn.options)


CONFIG_BYTES = 1 << 20
_ENGINES = ("auto", "loop", "fused", "kernel")


@dataclass
class OptimConfig:
    lr: float = option(1e-3, above=0.0, high=10.0)
    latent_lr: float | None = option(None, low=0.0, high=10.0)  # hadamrnn's name for recurrent_lr (the latent u)
    recurrent_lr: float | None = option(None, low=0.0, high=10.0)  # every family's recurrent weight (None: lr); 0 freezes it
    clip_norm: float | None = option(None, above=0.0, high=1e6)  # clip the gradient's 2-norm to this (None: never)
    gamma: float = option(1.0, above=0.0, high=1.0)  # StepLR factor applied after every epoch
    epochs: int = option(1, low=1, high=1_000_000)
    seed: int = option(0, low=0, high=SEED_MAX)  # the initial weights' draw, and the example order's unless order_seed
    order_seed: int | None = option(None, low=0, high=SEED_MAX)  # the order of the training examples alone (None: seed)
    device: str = "cpu"  # "cpu", or "cuda"/"cuda:N" where PyTorch sees a GPU (the engine's torch path)
    checkpoint_minutes: float = option(10.0, low=0.0, high=1e6)  # also checkpoint this often in an epoch (0: every step)
    max_steps_per_epoch: int | None = option(None, low=1, high=10**12)  # cap, for smoke runs
    init_from: str | None = None  # a run directory or checkpoint whose weights start this run (e.g. float → state_bits)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"optim.device: {_short(self.device)} is not a device; use cpu, cuda or cuda:N")


@dataclass
class ExperimentConfig:
    data: DataOptions = field(default_factory=data_options)  # by data set (hadamrnn.data)
    model: ModelOptions = field(default_factory=model_options)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict:
        return asdict(self)


_SECTIONS = {"data": data_options, "model": model_options,  # by data set and by family
             "optim": lambda values: parse_options(OptimConfig, values, "optim")}


def from_dict(values: dict) -> ExperimentConfig:
    if not isinstance(values, dict):
        raise ConfigError(f"a config is a mapping with sections {list(_SECTIONS)}, got {type(values).__name__}")
    unknown = set(values) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {_short(sorted(map(str, unknown)))}; valid sections: {list(_SECTIONS)}")
    return ExperimentConfig(**{name: parse(values.get(name, {})) for name, parse in _SECTIONS.items()})


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
        value = parse_yaml(raw, f"--set {key}", ConfigError) if raw.strip() else None
        if not isinstance(values.setdefault(section, {}), dict):
            raise ConfigError(f"{section}: expected a mapping of keys, got {values[section]!r}")
        values[section][name] = value
    return values


def shipped_configs() -> dict[str, str]:
    """The configs shipped in the package, ``{name: the first sentence of its leading comment}``
    (``hadamrnn configs``)."""
    folder = resources.files("hadamrnn") / "configs"
    described = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            comment = []
            for line in entry.read_text().splitlines():
                if not line.startswith("#"):
                    break
                comment.append(line.lstrip("#").strip())
            text = " ".join(comment)
            end = re.search(r"\.(\s|$)", text)  # a full stop, not a decimal point
            described[entry.name[:-5]] = text[:end.start() + 1] if end else text
    return described


def config_text(name_or_path: str | Path) -> tuple[str, str]:
    """``(YAML text, where it came from)`` of a config file path, or of a shipped config by name."""
    path = Path(name_or_path)
    if path.is_file():
        if path.stat().st_size > CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes; a config holds at most {CONFIG_BYTES}")
        try:
            return path.read_bytes().decode("utf-8"), str(path)
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); save the config as UTF-8") from None
    name = str(name_or_path)
    if path.suffix in (".yaml", ".yml") or "/" in name:
        raise ConfigError(f"config file {path} does not exist")
    shipped = resources.files("hadamrnn") / "configs" / f"{name}.yaml"
    if shipped.is_file():
        return shipped.read_text(), f"shipped config {name!r}"
    raise ConfigError(f"config {name!r} is neither a file nor a shipped config; shipped configs: "
                      f"{', '.join(shipped_configs())} (list them with: hadamrnn configs)")


def with_family(values: dict, family: str) -> dict:
    """``values`` with a ``model`` section for ``family`` (``train --model``): the section's keys that
    the family takes (``hidden_size``, ``embedding_dim``, …) are kept, the others left to its defaults,
    so that a shipped task config trains any family as it is. ``optim.latent_lr``, the learning rate
    of HadamRNN's latent signs, is left out for the other families."""
    from ..models import FAMILIES

    if family not in FAMILIES:
        raise ConfigError(f"--model {_short(family)}: not a model family; choose one of {list(FAMILIES)}")
    section = values.get("model") if isinstance(values.get("model"), dict) else {}
    taken = set(FAMILIES[family].options.__dataclass_fields__) - {"name"}
    values = {**values, "model": {"name": family, **{k: v for k, v in section.items() if k in taken}}}
    if family != "hadamrnn" and isinstance(values.get("optim"), dict):
        values["optim"] = {k: v for k, v in values["optim"].items() if k != "latent_lr"}
    return values


def load_config(path: str | Path | None, overrides: list[str] | None = None, family: str | None = None
                ) -> ExperimentConfig:
    """Read a YAML config file or a shipped config by name (or start from defaults when ``path`` is
    None), switch its model to ``family`` if given (:func:`with_family`), and apply ``--set`` overrides."""
    values: dict = {}
    if path is not None:
        text, path = config_text(path)
        values = parse_yaml(text, path, ConfigError)
        if values is None:
            raise ConfigError(f"{path} is empty; a config needs at least a data section, e.g. "
                              f"'data: {{name: copy}}' (hadamrnn configs show copy-smoke prints a complete one)")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a mapping with sections {list(_SECTIONS)}, got a "
                              f"{type(values).__name__}")
    if family is not None:
        values = with_family(values, family)
    return from_dict(apply_overrides(values, overrides or []))

