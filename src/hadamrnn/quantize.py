"""Quantizers: small named objects with a straight-through (identity) gradient.

A quantizer maps a real tensor to its quantized value in the forward pass and passes the gradient
through unchanged in the backward pass (straight-through estimator, no clipping). Layers receive a
quantizer and call it; they do not know how it quantizes. Each quantizer states its ``bits`` per
entry as deployed (``None``: full precision, stored as 32-bit floats).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Quantizer", "SignQuantizer", "UniformQuantizer", "FullPrecision", "get_quantizer", "sign"]


class _StraightThrough(torch.autograd.Function):
    """Forward: the given quantized value, bit for bit. Backward: identity to the real input."""

    @staticmethod
    def forward(ctx, real: Tensor, quantized: Tensor) -> Tensor:  # type: ignore[override]
        return quantized

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad, None


class Quantizer:
    """Base class: ``quantizer(w)`` returns the quantized tensor with an identity gradient."""

    name: str = "quantizer"
    bits: int | None = None

    def quantize(self, w: Tensor) -> Tensor:
        """The quantized value (no gradient semantics)."""
        raise NotImplementedError

    def __call__(self, w: Tensor) -> Tensor:
        with torch.no_grad():
            q = self.quantize(w)
        return _StraightThrough.apply(w, q)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bits={self.bits})"


@dataclass(frozen=True, repr=False)
class SignQuantizer(Quantizer):
    """``sign`` with ``sign(0) = +1`` (so a ±1 vector never has a zero entry), 1 bit per entry."""

    name: str = "sign"
    bits: int = 1

    def quantize(self, w: Tensor) -> Tensor:
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


@dataclass(frozen=True, repr=False)
class UniformQuantizer(Quantizer):
    """Symmetric uniform ``bits``-bit quantization with one scale per tensor.

    ``alpha = max|w|``, ``level = clamp(round(w · 2^(p-1) / alpha), -2^(p-1), 2^(p-1) - 1)``,
    value ``level · alpha / 2^(p-1)``. At most ``2^p`` distinct values. An all-zero tensor stays zero.
    """

    bits: int = 4
    name: str = "uniform"

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
            raise ValueError(f"uniform quantizer bits must be an int in [2, 16], got {self.bits!r} "
                             "(use bits=None for full precision, or the sign quantizer for 1 bit)")

    def levels(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Integer levels (int32, same shape as ``w``) and the scale ``alpha / 2^(p-1)`` (0-dim)."""
        half = 2 ** (self.bits - 1)
        alpha = w.detach().abs().max()
        step = alpha / half
        if alpha == 0:
            return torch.zeros(w.shape, dtype=torch.int32, device=w.device), step
        level = torch.clamp(torch.round(w.detach() / step), -half, half - 1)
        return level.to(torch.int32), step

    def quantize(self, w: Tensor) -> Tensor:
        level, step = self.levels(w)
        return level.to(w.dtype) * step


@dataclass(frozen=True, repr=False)
class FullPrecision(Quantizer):
    """Identity: the tensor is kept as 32-bit floats."""

    name: str = "float"
    bits: None = None

    def quantize(self, w: Tensor) -> Tensor:
        return w

    def __call__(self, w: Tensor) -> Tensor:
        return w


sign = SignQuantizer()


def get_quantizer(spec: Quantizer | int | None) -> Quantizer:
    """A quantizer from a bit width: ``None`` full precision, ``1`` sign, ``p >= 2`` uniform ``p``-bit."""
    if isinstance(spec, Quantizer):
        return spec
    if spec is None:
        return FullPrecision()
    if spec == 1 and not isinstance(spec, bool):
        return SignQuantizer()
    return UniformQuantizer(spec)
