"""FastGRNN (Kusupati et al., NeurIPS 2018), the compact gated RNN of the microcontroller literature.

    z_t  = σ(W x_t + U h_{t-1} + b_z)
    h~_t = tanh(W x_t + U h_{t-1} + b_h)
    h_t  = (ζ (1 − z_t) + ν) ⊙ h~_t + z_t ⊙ h_{t-1},      ζ = σ(ζ_raw), ν = σ(ν_raw)

``W`` (n × d) and ``U`` (n × n) are optionally low rank (``W = W_1 W_2`` with ``W_1`` n × r and
``W_2`` r × d; likewise ``U``) and optionally ``p``-bit (each factor quantized by the uniform
quantizer with a straight-through gradient, FastGRNN-LSQ style). Read-out ``V h + c``, ``V``
optionally ``output_bits``-bit (the bytes of a microcontroller model are counted whole). ζ and ν
start at σ(1) and σ(−4), as in the reference implementation (EdgeML).

``activations="hard"`` trains with the piecewise-linear σ(x) = clip((x + 1)/2, 0, 1) and
tanh(x) = clip(x, −1, 1) (EdgeML's ``quantSigm``/``quantTanh``), which integer arithmetic computes
exactly: the form the integer C export runs (``hadamrnn.deploy.integer_fastgrnn``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from ..layers import QuantizedLinear
from ..options import option
from ..size import TensorSize, quantized_size
from .common import SequenceModel, Task

__all__ = ["FastGRNN", "FastGRNNOptions", "build", "ACTIVATIONS"]


def _hard_sigmoid(x: Tensor) -> Tensor:
    return (functional.hardtanh(x) + 1) / 2  # clip((x + 1)/2, 0, 1)


# name -> (σ, tanh) of the gate and the candidate
ACTIVATIONS = {"smooth": (torch.sigmoid, torch.tanh), "hard": (_hard_sigmoid, functional.hardtanh)}


class _Matrix(nn.Module):
    """A full or low-rank (``rank``) linear map without bias, each factor ``bits``-bit (None: float)."""

    def __init__(self, name: str, out_features: int, in_features: int, rank: int | None, bits: int | None) -> None:
        super().__init__()
        self.name = name
        shapes = [(in_features, out_features)] if rank is None else [(in_features, rank), (rank, out_features)]
        self.factors = nn.ModuleList(QuantizedLinear(i, o, bias=False, quantizer=bits) for i, o in shapes)

    def forward(self, x: Tensor) -> Tensor:
        for factor in self.factors:
            x = factor(x)
        return x

    def size_rows(self) -> list[TensorSize]:
        return [quantized_size(f"{self.name}{k + 1 if len(self.factors) > 1 else ''}", tuple(f.weight.shape),
                               f.quantizer.bits) for k, f in enumerate(self.factors)]


class FastGRNN(SequenceModel):
    def __init__(self, task: Task, hidden_size: int, w_rank: int | None, u_rank: int | None, bits: int | None,
                 output_bits: int | None = None, activations: str = "smooth") -> None:
        if activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {sorted(ACTIVATIONS)}, got {activations!r}")
        n = hidden_size
        super().__init__(task, QuantizedLinear(n, task.output_size, quantizer=output_bits))
        self.W = _Matrix("W", n, task.input_size, w_rank, bits)
        self.U = _Matrix("U", n, n, u_rank, bits)
        self.bias_gate = nn.Parameter(torch.ones(n))
        self.bias_update = nn.Parameter(torch.ones(n))
        self.zeta_raw = nn.Parameter(torch.tensor(1.0))
        self.nu_raw = nn.Parameter(torch.tensor(-4.0))
        self.activations = activations

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return list(self.U.parameters())  # U, or its low-rank factors: FastGRNN's hidden-to-hidden matrix

    def states(self, x: Tensor, last_only: bool) -> Tensor:
        projected = self.W(x)  # (B, T, n): W x_t for every step at once
        zeta, nu = torch.sigmoid(self.zeta_raw), torch.sigmoid(self.nu_raw)
        sigmoid, tanh = ACTIVATIONS[self.activations]
        h = projected.new_zeros(x.shape[0], projected.shape[-1])
        states = []
        for wx in projected.unbind(1):
            pre = wx + self.U(h)
            z = sigmoid(pre + self.bias_gate)
            candidate = tanh(pre + self.bias_update)
            h = (zeta * (1 - z) + nu) * candidate + z * h
            states.append(h)
        return h if last_only else torch.stack(states, dim=1)

    def size_rows(self) -> list[TensorSize]:
        n, classes = self.bias_gate.shape[0], self.task.output_size
        rows = [*self.W.size_rows(), *self.U.size_rows(), quantized_size("b_z", (n,), None),
                quantized_size("b_h", (n,), None), quantized_size("zeta_nu", (2,), None),
                quantized_size("V", (classes, n), self.output.quantizer.bits), quantized_size("c", (classes,), None)]
        if self.embedding is not None:
            rows.append(quantized_size("embedding", tuple(self.embedding.weight.shape), None))
        return rows


@dataclass
class FastGRNNOptions:
    """The ``model:`` keys of FastGRNN."""

    name: str = option("fastgrnn", choices=("fastgrnn",))
    hidden_size: int = option(32, low=1, high=2**14)
    w_rank: int | None = option(None, low=1, high=2**14)  # None: full rank
    u_rank: int | None = option(None, low=1, high=2**14)
    bits: int | None = option(None, low=2, high=16)  # p-bit W and U factors; None: float
    output_bits: int | None = option(None, low=2, high=16)  # p-bit read-out V; None: float
    embedding_dim: int | None = option(None, low=1, high=2**16)
    activations: str = option("smooth", choices=tuple(ACTIVATIONS))  # hard: piecewise-linear σ, tanh (integer C)


def build(options: FastGRNNOptions, task: Task) -> FastGRNN:
    return FastGRNN(task, options.hidden_size, options.w_rank, options.u_rank, options.bits, options.output_bits,
                    options.activations)
