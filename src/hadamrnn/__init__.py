"""hadamrnn: binary and sparse-ternary orthogonal recurrent networks (HadamRNN, Block-HadamRNN)."""

from .hadamard import fwht, sylvester
from .layers import QuantizedLinear
from .model import HadamRNN, HadamRNNConfig
from .quantize import FullPrecision, Quantizer, SignQuantizer, UniformQuantizer, get_quantizer, sign
from .recurrent import SignedHadamard, hadamard_orthogonal
from .size import model_size_bits, size_summary

__version__ = "0.1.0"

__all__ = [
    "sylvester", "fwht",
    "Quantizer", "SignQuantizer", "UniformQuantizer", "FullPrecision", "get_quantizer", "sign",
    "SignedHadamard", "hadamard_orthogonal", "QuantizedLinear",
    "HadamRNNConfig", "HadamRNN",
    "model_size_bits", "size_summary",
]
