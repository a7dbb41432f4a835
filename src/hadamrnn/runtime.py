"""Inference from a ``.hrnn`` file with NumPy alone (no PyTorch import): for checks and deployment.

    model = hadamrnn.runtime.load("model.hrnn")
    logits = model.logits(x)      # x: (B, T, d) floats, or (B, T) token ids

``W h`` is the fast Walsh–Hadamard transform plus sign flips, as on a microcontroller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileformat import ModelFileError, read_model_file, unpack_bits
from .preprocess import InputTransform

__all__ = ["RuntimeModel", "load", "fwht", "ModelFileError"]


def fwht(x: np.ndarray, block: int) -> np.ndarray:
    """Unnormalised ``I ⊗ H_block`` on the last axis (``n log2(block)`` additions).

    The NumPy twin of ``hadamrnn.hadamard.fwht``, which this module cannot import (it needs torch).
    """
    shape, n = x.shape, x.shape[-1]
    x = x.reshape(-1, n)
    half = 1
    while half < block:
        pairs = x.reshape(-1, n // (2 * half), 2, half)
        x = np.stack((pairs[:, :, 0] + pairs[:, :, 1], pairs[:, :, 0] - pairs[:, :, 1]), axis=2).reshape(-1, n)
        half *= 2
    return x.reshape(shape)


@dataclass
class RuntimeModel:
    """The exported network: ``h_t = s ⊙ (I⊗H_m) h_{t-1}/√m + U x_t + b``, ``y = V relu(h) + c``."""

    config: dict
    signs: np.ndarray  # (n,) ±1
    U: np.ndarray  # (n, d) dequantized
    b: np.ndarray
    V: np.ndarray  # (C, n) dequantized
    c: np.ndarray
    embedding: np.ndarray | None
    levels: dict  # name -> (integer levels, scale) of the quantized matrices
    transform: InputTransform | None = None  # raw → model inputs (apply before logits; predict does)

    @property
    def block(self) -> int:
        return int(self.config["block_size"])

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if self.embedding is not None:
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"this model takes token ids (B, T), got {x.dtype} {x.shape}")
            if x.min(initial=0) < 0 or x.max(initial=0) >= len(self.embedding):
                raise ValueError(f"token ids must lie in [0, {len(self.embedding)})")
            return self.embedding[x]
        if x.ndim != 3 or x.shape[-1] != self.U.shape[1]:
            raise ValueError(f"this model takes floats (B, T, {self.U.shape[1]}), got shape {x.shape}")
        return x.astype(np.float64)

    def _steps(self, x: np.ndarray):
        """Yield ``h_t`` (B, n) for t = 1..T, projecting one step's input at a time."""
        x = self._inputs(x)
        scale = 1.0 / math.sqrt(self.block)
        h = None
        for t in range(x.shape[1]):
            z = x[:, t] @ self.U.T + self.b
            h = z if h is None else self.signs * (fwht(h, self.block) * scale) + z
            yield h

    def states(self, x: np.ndarray) -> np.ndarray:
        """Pre-activation states: ``(B, n)`` at the last step, or ``(B, T, n)`` for read-out "all"."""
        if self.config["readout"] == "all":
            return np.stack(list(self._steps(x)), axis=1)
        for h in self._steps(x):
            pass
        return h

    def state_range(self, x: np.ndarray) -> float:
        """Largest ``|h_t|`` over every step and sample (to calibrate fixed point)."""
        return max(float(np.abs(h).max()) for h in self._steps(x))

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(self.states(x), 0.0) @ self.V.T + self.c

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class ids: argmax of the logits, or ``logit > 0`` for a single binary logit."""
        logits = self.logits(x)
        return (logits[..., 0] > 0).astype(np.int64) if logits.shape[-1] == 1 else logits.argmax(-1)


def load(path: str | Path) -> RuntimeModel:
    header, stream, float_bytes = read_model_file(path)
    floats = np.frombuffer(float_bytes, dtype="<f4").astype(np.float64)
    tensors, levels, bit_offset, float_offset = {}, {}, 0, 0
    try:
        for spec in header["tensors"]:
            shape, count = tuple(spec["shape"]), int(np.prod(spec["shape"], dtype=np.int64))
            encoding = spec["encoding"]
            if encoding == "float32":
                tensors[spec["name"]] = floats[float_offset:float_offset + count].reshape(shape)
                float_offset += count
            elif encoding == "sign-bits":
                bits = unpack_bits(stream[bit_offset:], count, 1, signed=False)
                tensors[spec["name"]] = np.where(bits == 1, -1.0, 1.0).reshape(shape)
                bit_offset += count
            elif encoding.startswith("int"):
                width = int(encoding[3:])
                tensors[spec["name"]] = unpack_bits(stream[bit_offset:], count, width, signed=True).reshape(shape)
                bit_offset += count * width
            else:
                raise ModelFileError(f"{Path(path).name}: unknown tensor encoding {encoding!r}")
        if bit_offset != len(stream) or float_offset != len(floats):
            raise ModelFileError(f"{Path(path).name}: the tensors listed do not fill the payload")
        for name in ("U", "V"):
            if f"{name}_scale" in tensors:
                scale = float(tensors[f"{name}_scale"].reshape(()))
                levels[name] = (tensors[name], scale)
                tensors[name] = tensors[name] * scale
        config = header["config"]
        transform = header.get("input_transform")
        transform = InputTransform.from_dict(transform) if transform is not None else None
        model = RuntimeModel(config, tensors["W_signs"], tensors["U"], tensors["b"], tensors["V"], tensors["c"],
                             tensors.get("embedding"), levels, transform)
        n = int(config["hidden_size"])
        if model.signs.shape != (n,) or model.U.shape[0] != n or model.V.shape[1] != n or n % model.block:
            raise ModelFileError(f"{Path(path).name}: tensor shapes disagree with the configuration")
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ModelFileError):
            raise
        raise ModelFileError(f"{Path(path).name}: inconsistent header ({error})") from error
    return model
