"""Export a trained HadamRNN to a compact ``.hrnn`` file (see docs/format.md), and back to PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .fileformat import write_model_file
from ..models.hadamrnn import HadamRNN, HadamRNNConfig
from ..quantize import UniformQuantizer

__all__ = ["export_model", "load_as_torch"]


def export_model(model: HadamRNN, path: str | Path, transform: dict | None = None,
                 classes: tuple[str, ...] | None = None) -> int:
    """Write ``model`` to ``path``; returns the file size in bytes.

    ``transform``: the data set's input transform (``TaskInfo.transform``), stored so that every
    runtime turns raw inputs into the model's as training did. ``classes``: the class names
    (``TaskInfo.classes``), which ``predict`` prints.

    The file holds ``n`` sign bits for ``W``, ``p``-bit levels and a float32 scale for each
    quantized matrix, float32 biases, full-precision matrices and embedding: the bits counted by
    :func:`hadamrnn.model_size_bits`, padded once to a whole byte, plus a header and a checksum.
    """
    c = model.config
    n, d, outputs = c.hidden_size, c.input_size, c.output_size
    bit_fields: list[tuple[np.ndarray, int]] = []
    floats: list[np.ndarray] = []
    tensors: list[dict] = []
    with torch.no_grad():
        signs = model.recurrence.signs(model.latent).cpu().numpy()
        bit_fields.append(((signs < 0).astype(np.int64), 1))
        tensors.append({"name": "W_signs", "shape": [n], "encoding": "sign-bits"})
        matrices = {"U": (model.input, (n, d)), "V": (model.output, (outputs, n))}
        scales: dict[str, np.ndarray] = {}
        for name, (layer, shape) in matrices.items():
            if isinstance(layer.quantizer, UniformQuantizer):
                levels, step = layer.quantizer.levels(layer.weight)
                bit_fields.append((levels.cpu().numpy(), layer.quantizer.bits))
                tensors.append({"name": name, "shape": list(shape), "encoding": f"int{layer.quantizer.bits}"})
                scales[name] = np.array([float(step)])
            elif layer.quantizer.bits is None:
                scales[name] = layer.weight.cpu().numpy()
            else:
                raise ValueError(f"{name}: cannot export a {layer.quantizer!r}; use uniform p-bit or full precision")
        for name, values in (("U", scales["U"]), ("b", model.input.bias), ("V", scales["V"]), ("c", model.output.bias)):
            values = values.cpu().numpy() if isinstance(values, torch.Tensor) else values
            quantized = name in ("U", "V") and isinstance(matrices[name][0].quantizer, UniformQuantizer)
            label, shape = (f"{name}_scale", []) if quantized else (name, list(values.shape))
            tensors.append({"name": label, "shape": shape, "encoding": "float32"})
            floats.append(values.reshape(-1))
        if model.embedding is not None:
            floats.append(model.embedding.weight.cpu().numpy().reshape(-1))
            tensors.append({"name": "embedding", "shape": list(model.embedding.weight.shape), "encoding": "float32"})
    header = {
        "format": "hadamrnn",
        "config": {"hidden_size": n, "input_size": d, "output_size": outputs, "block_size": model.recurrence.block,
                   "input_bits": c.input_bits, "output_bits": c.output_bits, "vocab_size": c.vocab_size,
                   "readout": c.readout},
        "tensors": tensors,
        "input_transform": transform,
        "classes": list(classes) if classes is not None else None,
        "bit_count": int(sum(len(values.reshape(-1)) * width for values, width in bit_fields)),
        "float_count": int(sum(f.size for f in floats)),
    }
    return write_model_file(path, header, bit_fields, floats)


def load_as_torch(path: str | Path) -> HadamRNN:
    """A PyTorch HadamRNN computing exactly the exported function (``U``, ``V`` held dequantized, in float)."""
    from .runtime import load

    exported = load(path)
    c = exported.config
    block = c["block_size"] if c["block_size"] != c["hidden_size"] else None
    model = HadamRNN(HadamRNNConfig(input_size=c["input_size"], hidden_size=c["hidden_size"],
                                    output_size=c["output_size"], block_size=block, input_bits=None, output_bits=None,
                                    vocab_size=c["vocab_size"], readout=c["readout"]))
    with torch.no_grad():
        model.latent.copy_(torch.from_numpy(exported.signs))
        model.input.weight.copy_(torch.from_numpy(exported.U))
        model.input.bias.copy_(torch.from_numpy(exported.b))
        model.output.weight.copy_(torch.from_numpy(exported.V))
        model.output.bias.copy_(torch.from_numpy(exported.c))
        if exported.embedding is not None:
            model.embedding.weight.copy_(torch.from_numpy(exported.embedding))
    return model
