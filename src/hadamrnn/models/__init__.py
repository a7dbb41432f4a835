"""Model families by name: the paper's HadamRNN and the baselines its claim is measured against.

Every family takes the same inputs (float features ``(B, T, d)`` or token ids ``(B, T)`` through an
embedding), reads out at the last step or at every step, trains with the same loop and counts its
size in bits. A family is a module with an ``Options`` dataclass (the keys of a config's ``model:``
section, validated, with documented defaults) and ``build(options, task)``; the config names it
with ``model.name`` (default ``hadamrnn``).

| name | module | recurrence |
|---|---|---|
| ``hadamrnn`` | ``models.hadamrnn`` | ``W = diag(sign u)(I ⊗ H_m)/√m``: binary or sparse ternary, orthogonal |
| ``ornn`` | ``models.ornn`` | orthogonal ``W`` in full precision |
| ``ornn-quantized`` | ``models.ornn`` | that ``W`` quantized to ``q`` bits (the naive route) |
| ``lstm``, ``gru`` | ``models.gated`` | PyTorch's layers |
| ``fastgrnn`` | ``models.fastgrnn`` | FastGRNN, optionally low rank and ``p``-bit |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..options import OptionError, parse_options
from . import fastgrnn, gated, hadamrnn, ornn
from .common import Task

__all__ = ["FAMILIES", "ModelOptions", "model_options", "build_model", "Task"]


@dataclass(frozen=True)
class Family:
    options: type
    build: Callable[[Any, Task], nn.Module]


FAMILIES: dict[str, Family] = {
    "hadamrnn": Family(hadamrnn.Options, hadamrnn.build),
    "ornn": Family(ornn.ORNNOptions, ornn.build),
    "ornn-quantized": Family(ornn.QuantizedORNNOptions, ornn.build),
    "lstm": Family(gated.LSTMOptions, gated.build),
    "gru": Family(gated.GRUOptions, gated.build),
    "fastgrnn": Family(fastgrnn.FastGRNNOptions, fastgrnn.build),
}

ModelOptions = Any  # one of the families' Options dataclasses; each has `name` and `embedding_dim`


def model_options(values: dict | None = None) -> ModelOptions:
    """The options of the family ``values["name"]`` (default ``hadamrnn``), every key checked: a key
    that the family does not take is an error naming the family's keys."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        return parse_options(hadamrnn.Options, values, "model")  # the error for a non-mapping
    name = values.get("name", "hadamrnn")
    if not isinstance(name, str) or name not in FAMILIES:
        raise OptionError(f"model.name: {str(name)[:60]!r} is not a model family; choose one of {list(FAMILIES)}")
    family = FAMILIES[name].options
    try:
        return parse_options(family, values, "model")
    except OptionError as error:
        if "unknown key" in str(error):
            raise OptionError(f"{error} (model.name {name!r} takes no other keys)") from None
        raise


def build_model(options: ModelOptions, task: Task) -> nn.Module:
    return FAMILIES[options.name].build(options, task)
