"""Checkpoints that cannot run code: tensors in safetensors, everything else as JSON beside them.

One file, written atomically (a crash or kill mid-write leaves the previous file intact). Its
tensors (model and optimizer state, RNG state) are safetensors entries; the rest of the payload
(config, counters, optimizer hyper-parameters, scheduler state) is JSON in the file's metadata,
where each tensor stands as ``{"__tensor__": name}``. Reading parses JSON and raw arrays only:
nothing in the file is ever executed, unlike a pickle (what ``torch.save`` writes), which
hadamrnn therefore refuses to read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors

from ..atomic import atomic_write_bytes
from ..options import short_repr
from ..untrusted import parse_json

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "CHECKPOINT_SUFFIX", "refuse_pickles",
           "remove_stale_temporaries"]

FORMAT_VERSION = 2  # 1: torch.save pickles (hadamrnn 0.1), no longer read
CHECKPOINT_SUFFIX = ".safetensors"
_KEY = "hadamrnn"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, a pickle, or from an unknown format version."""


def _split(value: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """``value`` as JSON-ready data, its tensors moved into ``tensors`` under their path."""
    if isinstance(value, torch.Tensor):
        tensors[where] = value.detach().cpu().contiguous()
        return {"__tensor__": where}
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: _split(item, tensors, f"{where}/{key}") for key, item in value.items()}
        # optimizer state is keyed by parameter index: JSON objects only have string keys
        return {"__items__": [[key, _split(item, tensors, f"{where}/{key}")] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_split(item, tensors, f"{where}/{index}") for index, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint entry {where}: cannot store a {type(value).__name__}")


def _join(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__items__"}:
            return {key: _join(item, tensors) for key, item in value["__items__"]}
        return {key: _join(item, tensors) for key, item in value.items()}
    if isinstance(value, list):
        return [_join(item, tensors) for item in value]
    return value


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Serialise ``payload`` (nested dicts and lists of tensors and plain values) to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    data = _split({"format_version": FORMAT_VERSION, **payload}, tensors, "")
    atomic_write_bytes(path, save_tensors(tensors, metadata={_KEY: json.dumps(data)}))


def load_checkpoint(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The payload of the checkpoint at ``path``; a :class:`CheckpointError` if it lacks a ``required`` key."""
    path = Path(path)
    if not path.is_file():
        if path.suffix == CHECKPOINT_SUFFIX and path.with_suffix(".pt").is_file():
            refuse_pickles(path.with_suffix(".pt"))
        raise CheckpointError(f"no checkpoint at {path}")
    if path.suffix == ".pt":
        refuse_pickles(path)
    try:
        with safe_open(str(path), framework="pt") as stored:
            metadata = stored.metadata() or {}
            tensors = {name: stored.get_tensor(name) for name in stored.keys()}
    except (SafetensorError, ValueError, OSError) as error:
        start = path.read_bytes()[:2]
        hint = " (it looks like a pickle, which hadamrnn never loads)" if start[:1] == b"\x80" or start == b"PK" else ""
        raise CheckpointError(f"{path} is not a readable checkpoint{hint} ({type(error).__name__}: {error})") from None
    data = parse_json(metadata[_KEY], f"{path}: metadata", CheckpointError) if _KEY in metadata else None
    if not isinstance(data, dict) or "format_version" not in data:
        raise CheckpointError(f"{path} is not a hadamrnn checkpoint (safetensors without hadamrnn's metadata)")
    version = data["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {short_repr(version)} is not a version this hadamrnn wrote "
                              f"(it reads version {FORMAT_VERSION}); the file is damaged or not a checkpoint")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {version}; this hadamrnn reads up to "
                              f"{FORMAT_VERSION}. Upgrade hadamrnn.")
    broken = [name.lstrip("/") for name, tensor in tensors.items()
              if tensor.is_floating_point() and not tensor.isfinite().all()]
    if broken:
        raise CheckpointError(f"{path} holds NaN or infinite values in {', '.join(broken[:5])}"
                              f"{' and more' if len(broken) > 5 else ''}: it cannot be evaluated, exported or "
                              f"resumed; use a checkpoint from before the values broke (checkpoints/best, or retrain)")
    try:
        payload = _join(data, tensors)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: inconsistent checkpoint ({type(error).__name__}: {error})") from None
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: it is incomplete or was not written by hadamrnn train")
    return payload


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a kill mid-write leaves in ``folder`` (``.NAME.*.tmp``, see
    :func:`hadamrnn.atomic.atomic_write_bytes`); returns them."""
    stale = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def refuse_pickles(path: Path) -> None:
    """The error for a checkpoint in the pickle format of hadamrnn 0.1 (never unpickled)."""
    raise CheckpointError(
        f"{path} is a pickled checkpoint (hadamrnn 0.1 wrote torch.save pickles). Loading a pickle can run "
        f"arbitrary code from the file, so hadamrnn does not read it: retrain the run with hadamrnn >= 0.2, "
        f"whose checkpoints are {CHECKPOINT_SUFFIX} files (tensors and JSON only).")
