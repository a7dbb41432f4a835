"""Validated option dataclasses: each field declares its type and allowed values beside it.

    @dataclass
    class Options:
        hidden_size: int = option(128, low=1, high=2**16, power_of_two=True)

    parse_options(Options, {"hidden_size": 100}, "model")   # OptionError naming model.hidden_size

Used by the experiment configuration (``hadamrnn.train.config``) and by every model family's
options (``hadamrnn.models``). Errors name the key, a short repr of the value (a value from a hostile
file may be huge or deeply nested) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from dataclasses import field
from typing import Any

__all__ = ["OptionError", "option", "parse_options", "short_repr", "SEED_MAX"]

SEED_MAX = 2**32 - 1  # seeds are unsigned 32-bit (NumPy's limit)


class OptionError(ValueError):
    """A configuration value is unknown, missing, of the wrong type or out of range."""


def option(default: Any, *, low: float | None = None, high: float | None = None, above: float | None = None,
           choices: tuple | None = None, power_of_two: bool = False) -> Any:
    """A config field with its allowed values, checked by :func:`parse_options` (floats must also be finite).

    ``low``/``high``: inclusive bounds; ``above``: an exclusive lower bound; ``choices``: allowed values."""
    rule = {"low": low, "high": high, "above": above, "choices": choices, "power_of_two": power_of_two}
    return field(default=default, metadata={"rule": rule})


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` where lossless (int → float), else a OptionError."""
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
            except OptionError:
                pass
        raise OptionError(f"{key}: expected {annotation}, got {_short(value)}")
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
    raise OptionError(f"{key}: expected {getattr(annotation, '__name__', annotation)}, got {_short(value)} "
                      f"({type(value).__name__})")


def _check_range(key: str, value: Any, rule: dict) -> None:
    """A OptionError naming ``key``, the value and what is allowed, unless ``value`` keeps ``rule``."""
    if value is None or isinstance(value, str) and rule["choices"] is None:
        return
    if rule["choices"] is not None:
        if value not in rule["choices"]:
            raise OptionError(f"{key}: {_short(value)} is not one of {list(rule['choices'])}")
        return
    low, high, above = rule["low"], rule["high"], rule["above"]
    allowed = " and ".join(part for part in (f"> {above}" if above is not None else "",
                                             f">= {low}" if low is not None else "",
                                             f"<= {high}" if high is not None else "") if part)
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{key}: {value} is not a finite number; allowed: {allowed}")
    if (low is not None and value < low) or (high is not None and value > high) or (above is not None and value <= above):
        raise OptionError(f"{key}: {_short(value)} is out of range; allowed: {allowed}")
    if rule["power_of_two"] and value & (value - 1):
        lower = 1 << (value.bit_length() - 1)
        raise OptionError(f"{key}: {value} is not a power of two; nearest: {lower} or {2 * lower}")


def parse_options(cls: type, values: Any, prefix: str, ignore: tuple[str, ...] = ()):
    """``cls(**values)`` after every key is known, of its field's type and within its field's rule;
    keys in ``ignore`` are skipped. Errors are :class:`OptionError` naming ``prefix.key``."""
    if not isinstance(values, dict):
        raise OptionError(f"{prefix}: expected a mapping of keys, got {_short(values)}")
    hints = typing.get_type_hints(cls)
    fields_by_name = {f.name: f for f in dataclasses.fields(cls)}
    checked = {}
    for key, value in values.items():
        if key in ignore:
            continue
        if key not in hints:
            shown = key if isinstance(key, str) and len(key) <= 60 else _short(key)
            raise OptionError(f"unknown key {prefix}.{shown}; valid keys in {prefix}: {list(fields_by_name)}")
        checked[key] = _check_type(f"{prefix}.{key}", value, hints[key])
        if "rule" in fields_by_name[key].metadata:
            _check_range(f"{prefix}.{key}", checked[key], fields_by_name[key].metadata["rule"])
    return cls(**checked)


def short_repr(value: Any) -> str:
    """A repr cut short (see the module docstring)."""
    return _REPR.repr(value)


_short = short_repr
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
