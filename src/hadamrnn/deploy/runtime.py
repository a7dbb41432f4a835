"""Inference from a ``.hrnn`` file with NumPy alone (no PyTorch import): for checks and deployment.

    model = hadamrnn.deploy.runtime.load("model.hrnn")
    logits = model.logits(x)      # x: (B, T, d) floats, or (B, T) token ids

``W h`` is the fast Walsh–Hadamard transform plus sign flips, as on a microcontroller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .fileformat import ModelFileError, read_model_file, unpack_bits
from ..classes import check_class_names
from ..preprocess import InputTransform

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
    classes: tuple[str, ...] | None = None  # the class names (index order), or None

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

    def states(self, x: np.ndarray, engine: str = "native") -> np.ndarray:
        """Pre-activation states: ``(B, n)`` at the last step, or ``(B, T, n)`` for read-out "all".
        ``engine``: ``"native"``, the compiled recurrence (:func:`hadamrnn.native.recurrence_forward`,
        training's kernel, in float64), or ``"numpy"``, the step loop it is tested against."""
        if engine == "native":
            return self._states_native(x)
        if engine != "numpy":
            raise ValueError(f"engine must be 'native' or 'numpy', got {engine!r}")
        if self.config["readout"] == "all":
            return np.stack(list(self._steps(x)), axis=1)
        for h in self._steps(x):
            pass
        return h

    @cached_property
    def input_table(self) -> np.ndarray:
        """Token models: ``U e + b`` for every embedding row ``e`` (V, n), a step's input term."""
        return self.embedding @ self.U.T + self.b

    def _states_native(self, x: np.ndarray) -> np.ndarray:
        from .. import native

        tokens = self.embedding is not None
        x = np.ascontiguousarray(x if tokens else self._inputs(x), dtype=np.int64 if tokens else np.float64)
        if tokens:
            self._inputs(x)  # the checks: token ids (B, T) within the vocabulary
        rows, steps, n = x.shape[0], x.shape[1], len(self.signs)
        all_steps = self.config["readout"] == "all"
        last, states = np.zeros((rows, n)), np.zeros((rows, steps, n) if all_steps else (1, 1, 1))
        if steps == 0:  # h_0 = 0
            return states if all_steps else last
        dummy1, dummy2, dummy3 = np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1, 1))
        if tokens:
            arrays = (dummy3, dummy2, dummy1, self.input_table, x)
        else:
            arrays = (x, np.ascontiguousarray(self.U.T), np.ascontiguousarray(self.b), dummy2, np.zeros((1, 1), np.int64))
        native.recurrence_forward(np.ascontiguousarray(self.signs, dtype=np.float64), not tokens, *arrays, steps,
                                  native.OUT_STATES if all_steps else native.OUT_LAST, last, states, dummy2, dummy1,
                                  dummy3, np.zeros((1, 1, 1), np.uint8), np.zeros(rows, np.int64), 0, np.zeros((0, n)),
                                  self.block, np.float64(1.0 / math.sqrt(self.block)))
        return states if all_steps else last

    def state_range(self, x: np.ndarray) -> float:
        """Largest ``|h_t|`` over every step and sample (to calibrate fixed point)."""
        return max(float(np.abs(h).max()) for h in self._steps(x))

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(self.states(x), 0.0) @ self.V.T + self.c

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class ids: argmax of the logits, or ``logit > 0`` for a single binary logit."""
        logits = self.logits(x)
        return (logits[..., 0] > 0).astype(np.int64) if logits.shape[-1] == 1 else logits.argmax(-1)


def _positive(value, what: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ModelFileError(f"{what} must be an integer in [1, {high}], got {str(value)[:40]}")
    return value


def expected_tensors(config) -> dict[str, tuple[list[int], str]]:
    """``{name: (shape, encoding)}`` that a file of this (validated) configuration holds."""
    n, d, classes = config["hidden_size"], config["input_size"], config["output_size"]
    expected = {"W_signs": ([n], "sign-bits"), "b": ([n], "float32"), "c": ([classes], "float32")}
    for name, shape, bits in (("U", [n, d], config["input_bits"]), ("V", [classes, n], config["output_bits"])):
        expected[name] = (shape, "float32" if bits is None else f"int{bits}")
        if bits is not None:
            expected[f"{name}_scale"] = ([], "float32")
    if config["vocab_size"] is not None:
        expected["embedding"] = ([config["vocab_size"], d], "float32")
    return expected


def _checked_config(header) -> dict:
    """The header's configuration, every field checked (types, ranges, powers of two, known read-outs)."""
    if not isinstance(header, dict) or header.get("format") != "hadamrnn":
        raise ModelFileError("the header is not a hadamrnn model header")
    config = header.get("config")
    if not isinstance(config, dict):
        raise ModelFileError("the header has no configuration mapping")
    n = _positive(config.get("hidden_size"), "hidden_size", 2**16)
    block = _positive(config.get("block_size"), "block_size", n)
    if n & (n - 1) or block & (block - 1):
        raise ModelFileError(f"hidden_size {n} and block_size {block} must be powers of two")
    _positive(config.get("input_size"), "input_size", 2**16)
    _positive(config.get("output_size"), "output_size", 2**16)
    for key in ("input_bits", "output_bits"):
        if config.get(key) is not None:
            _positive(config[key], key, 16)
            if config[key] < 2:
                raise ModelFileError(f"{key} must be in [2, 16] or null, got {config[key]}")
    if config.get("vocab_size") is not None:
        _positive(config["vocab_size"], "vocab_size", 2**24)
    if config.get("readout") not in ("last", "all"):
        raise ModelFileError(f"readout must be 'last' or 'all', got {str(config.get('readout'))[:40]}")
    return config


def _checked_tensors(header, config) -> list[dict]:
    """The tensor list, which must be exactly the configuration's tensors with their shapes, and whose
    sizes must add up to the header's counts (so nothing is allocated beyond the file's own size)."""
    tensors = header.get("tensors")
    expected = expected_tensors(config)
    if not isinstance(tensors, list) or not all(isinstance(t, dict) for t in tensors):
        raise ModelFileError("tensors must be a list of mappings")
    names = [t.get("name") for t in tensors]
    if sorted(map(str, names)) != sorted(expected):
        raise ModelFileError(f"the file lists tensors {str(names)[:200]}; this configuration has {sorted(expected)}")
    bits = floats = 0
    for spec in tensors:
        shape, encoding = expected[spec["name"]]
        if spec.get("shape") != shape or spec.get("encoding") != encoding:
            raise ModelFileError(f"tensor {spec['name']}: shape {str(spec.get('shape'))[:60]} and encoding "
                                 f"{str(spec.get('encoding'))[:20]}; the configuration implies {shape} and {encoding}")
        count = int(np.prod(shape, dtype=np.int64))
        if encoding == "float32":
            floats += count
        else:
            bits += count * (1 if encoding == "sign-bits" else int(encoding[3:]))
    if (bits, floats) != (header["bit_count"], header["float_count"]):
        raise ModelFileError(f"the tensors need {bits} bits and {floats} floats; the header announces "
                             f"{header['bit_count']} and {header['float_count']}")
    return tensors


def load(path: str | Path) -> RuntimeModel:
    """Read and validate a ``.hrnn`` file; only :class:`ModelFileError` escapes for a bad file."""
    name = Path(path).name
    header, stream, float_bytes = read_model_file(path)
    try:
        config = _checked_config(header)
        tensors_spec = _checked_tensors(header, config)
        transform = header.get("input_transform")
        transform = InputTransform.from_dict(transform) if transform is not None else None
        if transform is not None and transform.kind == "features" and transform.channels != config["input_size"]:
            raise ModelFileError(f"the input transform has {transform.channels} channels, the model "
                                 f"{config['input_size']} inputs")
        if transform is not None and (transform.kind == "tokens") != (config["vocab_size"] is not None):
            raise ModelFileError("the input transform's kind does not match the model's inputs")
        classes = header.get("classes")
        classes = check_class_names(classes, config["output_size"]) if classes is not None else None
        floats = np.frombuffer(float_bytes, dtype="<f4").astype(np.float64)
        if not np.isfinite(floats).all():
            raise ModelFileError("the file holds non-finite weights (NaN or infinity)")
        tensors, levels, bit_offset, float_offset = {}, {}, 0, 0
        for spec in tensors_spec:
            shape, count, encoding = tuple(spec["shape"]), int(np.prod(spec["shape"], dtype=np.int64)), spec["encoding"]
            if encoding == "float32":
                tensors[spec["name"]] = floats[float_offset:float_offset + count].reshape(shape)
                float_offset += count
            elif encoding == "sign-bits":
                bits = unpack_bits(stream[bit_offset:], count, 1, signed=False)
                tensors[spec["name"]] = np.where(bits == 1, -1.0, 1.0).reshape(shape)
                bit_offset += count
            else:
                width = int(encoding[3:])
                tensors[spec["name"]] = unpack_bits(stream[bit_offset:], count, width, signed=True).reshape(shape)
                bit_offset += count * width
        for matrix in ("U", "V"):
            if f"{matrix}_scale" in tensors:
                scale = float(tensors[f"{matrix}_scale"].reshape(()))
                if not scale > 0:
                    raise ModelFileError(f"{matrix}_scale must be positive, got {scale}")
                levels[matrix] = (tensors[matrix], scale)
                tensors[matrix] = tensors[matrix] * scale
        return RuntimeModel(config, tensors["W_signs"], tensors["U"], tensors["b"], tensors["V"], tensors["c"],
                            tensors.get("embedding"), levels, transform, classes)
    except ModelFileError as error:
        raise ModelFileError(f"{name}: {error}") from None
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as error:
        raise ModelFileError(f"{name}: inconsistent header ({type(error).__name__}: {str(error)[:200]})") from None
