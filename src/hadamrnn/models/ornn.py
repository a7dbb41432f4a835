"""Orthogonal RNN baselines with HadamRNN's linear recurrence and ReLU read-out.

- ``ornn``: ``W`` kept exactly orthogonal by ``torch.nn.utils.parametrizations.orthogonal`` (Cayley
  map, as in scoRNN), full precision; ``U``/``V`` optionally ``p``-bit (the paper's full-precision reference point).
- ``ornn-quantized``: the naive route to a small recurrent matrix — the orthogonal ``W`` of ``ornn``
  quantized to ``q`` bits with a straight-through gradient. ``q >= 2``: the uniform quantizer of
  ``U``/``V`` (one scale, ``alpha = max|W|``); ``q = 1``: ``sign(W) / sqrt(n)``, the binary matrix
  whose entries have an orthogonal matrix's typical magnitude (HadamRNN's ``W`` has exactly these
  entries, but is orthogonal by construction). ``U``/``V`` as in HadamRNN (4 bits by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal

from ..engine import dense_recurrence
from ..layers import QuantizedLinear
from ..options import option
from ..quantize import FullPrecision, Quantizer, UniformQuantizer
from ..size import TensorSize, quantized_size
from .common import SequenceModel, Task

__all__ = ["ORNN", "ScaledSign", "ORNNOptions", "QuantizedORNNOptions", "build"]


@dataclass(frozen=True, repr=False)
class ScaledSign(Quantizer):
    """``sign(w) · scale`` (``sign(0) = +1``), 1 bit per entry; straight-through gradient."""

    scale: float = 1.0
    name: str = "scaled-sign"
    bits: int = 1

    def quantize(self, w: Tensor) -> Tensor:
        return torch.where(w >= 0, self.scale, -self.scale).to(w.dtype)


class ORNN(SequenceModel):
    """``h_t = Q(W) h_{t-1} + U x_t + b``, ``y = V relu(h) + c``, ``W`` orthogonal (``Q``: identity
    for ``ornn``, a ``q``-bit quantizer for ``ornn-quantized``)."""

    def __init__(self, task: Task, hidden_size: int, input_bits: int | None, output_bits: int | None,
                 recurrent_bits: int | None = None, engine: str = "auto", init: str = "torch") -> None:
        n = hidden_size
        super().__init__(task, QuantizedLinear(n, task.output_size, quantizer=output_bits), nn.ReLU())
        self.input = QuantizedLinear(task.input_size, n, quantizer=input_bits)
        nn.init.zeros_(self.input.bias)
        # The Cayley map: ten times cheaper than the matrix exponential at n = 512 (18 vs 198 ms
        # forward and backward, measured); it cannot reach orthogonal matrices with eigenvalue -1.
        self.recurrent = orthogonal(nn.Linear(n, n, bias=False), orthogonal_map="cayley")
        if init != "torch":  # kept exactly: the parametrization stores it as the base the Cayley map multiplies
            with torch.no_grad():
                self.recurrent.weight = orthogonal_init(init, n)
        self.recurrent_bits, self.engine = recurrent_bits, engine
        self.recurrent_quantizer: Quantizer = (FullPrecision() if recurrent_bits is None else
                                               ScaledSign(1 / math.sqrt(n)) if recurrent_bits == 1 else
                                               UniformQuantizer(recurrent_bits))

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return list(self.recurrent.parametrizations.weight.parameters())  # what the Cayley map turns into W

    def recurrent_weight(self) -> Tensor:
        """The ``W`` the recurrence uses, ``(n, n)``: orthogonal, or its quantized version."""
        return self.recurrent_quantizer(self.recurrent.weight)

    def states(self, x: Tensor, last_only: bool) -> Tensor:
        return dense_recurrence(self.recurrent_weight(), x, self.input.quantized_weight(), self.input.bias,
                                last_only, self.engine)

    def size_rows(self) -> list[TensorSize]:
        n, d, classes = self.recurrent.weight.shape[0], self.task.input_size, self.task.output_size
        bits = self.recurrent_bits
        if bits == 1:  # the scale 1/sqrt(n) follows from n: nothing to store
            w_row = TensorSize("W", (n, n), "1-bit sign", n * n, n * n)
        else:
            w_row = quantized_size("W", (n, n), bits)
        rows = [w_row, quantized_size("U", (n, d), self.input.quantizer.bits), quantized_size("b", (n,), None),
                quantized_size("V", (classes, n), self.output.quantizer.bits), quantized_size("c", (classes,), None)]
        if self.embedding is not None:
            rows.append(quantized_size("embedding", tuple(self.embedding.weight.shape), None))
        return rows


INITS = ("torch", "haar", "henaff")


def orthogonal_init(kind: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """An ``n × n`` orthogonal matrix to start ``W`` from, drawn from torch's RNG (or ``generator``):

    - ``haar``: uniformly distributed over the orthogonal group (the QR decomposition of a Gaussian
      matrix, signs fixed by ``R``'s diagonal; Mezzadri 2007), eigenvalue angles spread over the circle;
    - ``henaff``: block-diagonal 2×2 rotations by angles uniform in ``[-π, π]`` (Henaff, Szlam and
      LeCun 2016; a trailing 1 for odd ``n``): eigenvalues ``e^{±iθ_k}``, a spectrum spread evenly.

    ``torch`` (not drawn here) is PyTorch's orthogonal parametrization of ``nn.Linear``'s default initialisation."""
    if kind == "haar":
        q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        # contiguous: QR's column-major Q made a resumed run part from the uninterrupted one
        return (q * torch.sign(torch.diagonal(r))).float().contiguous()
    if kind == "henaff":
        w = torch.eye(n, dtype=torch.float64)
        angles = torch.rand(n // 2, generator=generator, dtype=torch.float64) * 2 * math.pi - math.pi
        for k, angle in enumerate(angles.tolist()):
            c, s = math.cos(angle), math.sin(angle)
            w[2 * k:2 * k + 2, 2 * k:2 * k + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        return w.float()
    raise ValueError(f"orthogonal initialisation must be one of {list(INITS)}, got {kind!r}")


@dataclass
class ORNNOptions:
    """The ``model:`` keys of the full-precision orthogonal RNN."""

    name: str = option("ornn", choices=("ornn",))
    hidden_size: int = option(128, low=1, high=2**14)
    input_bits: int | None = option(None, low=2, high=16)  # None: full precision
    output_bits: int | None = option(None, low=2, high=16)
    embedding_dim: int | None = option(None, low=1, high=2**16)
    engine: str = option("auto", choices=("auto", "loop", "fused", "kernel"))
    init: str = option("torch", choices=INITS)  # W's start: orthogonal_init


@dataclass
class QuantizedORNNOptions:
    """The ``model:`` keys of the orthogonal RNN with a quantized ``W``."""

    name: str = option("ornn-quantized", choices=("ornn-quantized",))
    hidden_size: int = option(128, low=1, high=2**14)
    recurrent_bits: int = option(1, low=1, high=16)  # q: 1 = binary sign(W)/sqrt(n)
    input_bits: int | None = option(4, low=2, high=16)
    output_bits: int | None = option(4, low=2, high=16)
    embedding_dim: int | None = option(None, low=1, high=2**16)
    engine: str = option("auto", choices=("auto", "loop", "fused", "kernel"))
    init: str = option("torch", choices=INITS)


def build(options: ORNNOptions | QuantizedORNNOptions, task: Task) -> ORNN:
    return ORNN(task, options.hidden_size, options.input_bits, options.output_bits,
                getattr(options, "recurrent_bits", None), options.engine, options.init)
