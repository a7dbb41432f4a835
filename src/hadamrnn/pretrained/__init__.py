"""Trained models that ship inside the package, by name.

``pretrained:NAME`` stands for a run directory or checkpoint wherever hadamrnn takes one
(``hadamrnn eval pretrained:har6``, ``hadamrnn export pretrained:har6 --target c``, ``load_trained``);
``load_pretrained("har6")`` returns the model. Each is one file of this folder, ``NAME.safetensors``:
a best-validation checkpoint in hadamrnn's checkpoint format (tensors in safetensors, the rest as
JSON; reading it runs no code) with one more entry, ``pretrained``: what it is, the command that
trained it, its ``results.json``, and a few test inputs with the logits the model gave them when it
was packaged, so that a copy can be checked without the data set.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import torch
from torch import nn

from ..options import short_repr
from ..untrusted import parse_json

__all__ = ["PREFIX", "names", "describe", "checkpoint", "load_pretrained", "package"]

PREFIX = "pretrained:"
_FOLDER = files(__name__)
_SUFFIX = ".safetensors"


def names() -> list[str]:
    """The shipped models' names, sorted."""
    return sorted(entry.name[:-len(_SUFFIX)] for entry in _FOLDER.iterdir() if entry.name.endswith(_SUFFIX))


def checkpoint(name: str) -> Path:
    """The file of the shipped model ``name`` (with or without the ``pretrained:`` prefix)."""
    name = name.removeprefix(PREFIX)
    path = Path(str(_FOLDER / f"{name}{_SUFFIX}"))
    if name not in names():
        raise ValueError(f"no pretrained model {short_repr(name)}; shipped: {', '.join(names()) or 'none'} "
                         f"(hadamrnn pretrained lists them)")
    return path


def describe(name: str) -> dict:
    """The ``pretrained`` entry of a shipped model: ``description``, ``command``, ``results`` (its
    results.json) and ``check`` (``inputs`` and the ``logits`` recorded for them)."""
    from ..train.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint(name), required=("pretrained",))["pretrained"]


def load_pretrained(name: str, device: str = "cpu") -> nn.Module:
    """The shipped model ``name``, ready for inference (``eval()`` mode)."""
    from ..train import load_trained

    return load_trained(checkpoint(name), device)[0].eval()


def package(run_dir: str | Path, output: str | Path, command: str, description: str, samples: int = 6,
            data_dir: str | Path | None = None) -> Path:
    """Write the best checkpoint of ``run_dir`` as a pretrained model file at ``output``.

    The data directory the run was trained on is dropped from its config (``eval`` then reads
    ``--data-dir``, else ``$HADAMRNN_DATA``, else ``./data``); ``samples`` test inputs spread over the
    test split (which is often ordered by class or subject) and the model's logits for them are
    stored as the check."""
    from ..train import checkpoint_path, load_splits, load_trained
    from ..train.checkpoint import load_checkpoint, save_checkpoint

    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise ValueError(f"{run_dir} has no results.json: only a finished run can be packaged")
    model, config, info = load_trained(run_dir)
    splits = load_splits(config, data_dir)
    inputs, _ = splits.test.batch(torch.linspace(0, len(splits.test) - 1, min(samples, len(splits.test))).long())
    with torch.no_grad():
        logits = model.eval()(inputs)
    best = load_checkpoint(checkpoint_path(run_dir, "best"), required=("config", "model", "info"))
    save_checkpoint(Path(output), {
        "config": replace(config, data=replace(config.data, dir=None)).to_dict(),
        "model": best["model"], "info": best["info"], "epoch": best.get("epoch"),
        "pretrained": {"description": description, "command": command,
                       "results": parse_json(results_path.read_bytes(), str(results_path), max_bytes=1 << 20),
                       "check": {"inputs": inputs, "logits": logits}}})
    return Path(output)
