"""Sylvester Hadamard matrices and the fast Walsh–Hadamard transform (FWHT).

The transform applies ``I_{n/m} ⊗ H_m`` (``m = n`` for the full transform) to the last dimension of
a tensor with ``n log2(m)`` additions/subtractions and no multiplications (except the optional
normalisation by ``1/sqrt(m)``). Because ``H_m`` is symmetric, the transform is its own adjoint: the
backward pass is the same transform applied to the incoming gradient, so no intermediate is stored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["check_power_of_two", "sylvester", "block_hadamard", "fwht"]


def check_power_of_two(value: int, what: str = "n") -> int:
    """Return ``log2(value)``; raise ``ValueError`` naming the nearest valid sizes otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} ({value!r})")
    if value < 1:
        raise ValueError(f"{what} must be a positive power of two (2^k), got {value}")
    if value & (value - 1):
        lower = 1 << (value.bit_length() - 1)
        raise ValueError(
            f"{what} = {value} is not a power of two; Hadamard sizes are 2^k. "
            f"Nearest valid sizes: {lower} and {lower * 2}."
        )
    return value.bit_length() - 1


def sylvester(n: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """Unnormalised Sylvester Hadamard matrix ``H_n`` (entries ±1), shape ``(n, n)``.

    ``H_1 = [1]``, ``H_{2k} = [[H_k, H_k], [H_k, -H_k]]``; equivalently
    ``H[i, j] = (-1)^popcount(i & j)``. Symmetric, and ``H_n H_n = n I``.
    """
    check_power_of_two(n)
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h


def block_hadamard(n: int, block: int | None = None, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> Tensor:
    """Unnormalised block-diagonal ``I_{n/m} ⊗ H_m``, shape ``(n, n)``; ``block=None`` means ``m = n``."""
    m = _resolve_block(n, block)
    if m == n:
        return sylvester(n, dtype, device)
    return torch.kron(torch.eye(n // m, dtype=dtype, device=device), sylvester(m, dtype, device))


def _resolve_block(n: int, block: int | None) -> int:
    check_power_of_two(n, "n")
    if block is None:
        return n
    check_power_of_two(block, "block")
    if block > n:
        raise ValueError(f"block size {block} is larger than n = {n}; use a power of two m <= n")
    return block


def _butterflies(x: Tensor, block: int) -> Tensor:
    """Unnormalised ``I ⊗ H_block`` on the last dimension: log2(block) rounds of (a+b, a-b)."""
    shape = x.shape
    n = shape[-1]
    x = x.reshape(-1, n)
    half = 1
    while half < block:
        # Pair element i with i + half inside every group of 2·half consecutive entries.
        pairs = x.view(-1, n // (2 * half), 2, half)
        a, b = pairs[:, :, 0, :], pairs[:, :, 1, :]
        x = torch.stack((a + b, a - b), dim=2).view(-1, n)
        half *= 2
    return x.view(shape)


class _FWHT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, block: int, scale: float) -> Tensor:  # type: ignore[override]
        ctx.block, ctx.scale = block, scale
        y = _butterflies(x, block)
        return y * scale if scale != 1.0 else y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        # (I ⊗ H_m) is symmetric, so the adjoint is the transform itself.
        return _FWHT.apply(grad, ctx.block, ctx.scale), None, None


def fwht(x: Tensor, block: int | None = None, normalized: bool = True) -> Tensor:
    """Fast Walsh–Hadamard transform over the last dimension.

    Args:
        x: tensor of shape ``(..., n)``, ``n = 2^k``, floating point (float32 or float64).
        block: block size ``m = 2^j`` dividing ``n``; applies ``I_{n/m} ⊗ H_m``. ``None``: ``m = n``.
        normalized: divide by ``sqrt(m)`` so the transform is orthogonal.

    Returns:
        ``x @ (I ⊗ H_m)ᵀ`` (``/ sqrt(m)`` when normalized), same shape and dtype as ``x``.
        Differentiable; the gradient is the same transform applied to the incoming gradient.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"fwht needs a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0:
        raise ValueError("fwht needs a tensor with at least one dimension (the last is transformed)")
    m = _resolve_block(x.shape[-1], block)
    scale = 1.0 / math.sqrt(m) if normalized else 1.0
    return _FWHT.apply(x.contiguous(), m, scale)
