"""hadamrnn: binary and sparse-ternary orthogonal recurrent networks (HadamRNN, Block-HadamRNN).

Names are imported on first use, so that ``import hadamrnn.deploy.runtime`` (NumPy only) does not pull
in PyTorch.
"""

from importlib import import_module

__version__ = "0.2.0"

_EXPORTS = {
    "sylvester": "hadamard", "fwht": "hadamard",
    "Quantizer": "quantize", "SignQuantizer": "quantize", "UniformQuantizer": "quantize",
    "FullPrecision": "quantize", "get_quantizer": "quantize", "sign": "quantize",
    "SignedHadamard": "recurrent", "hadamard_orthogonal": "recurrent",
    "QuantizedLinear": "layers",
    "HadamRNNConfig": "models.hadamrnn", "HadamRNN": "models.hadamrnn",
    "model_size_bits": "size", "size_summary": "size",
    "load_pretrained": "pretrained",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hadamrnn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
