"""Compiled CPU kernels (numba) for the signed-Hadamard linear recurrence.

Row-vector form, for ``T`` steps and ``N`` independent rows of width ``n``::

    H[0] = Z[0],   H[t] = s ⊙ (scale · B H[t-1]) + Z[t],   B = I_{n/m} ⊗ H_m,  scale = 1/sqrt(m)

Each step costs ``n log2(m)`` additions and ``n`` sign-scalings per row, against ``n²``
multiply-adds for a dense matrix–vector product. Rows are independent and run in parallel.
These functions work on NumPy arrays (float32 or float64) and know nothing of autograd;
``hadamrnn.engine`` wraps them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["recurrence_forward", "recurrence_backward"]


@njit(inline="always", cache=True)
def _fwht_inplace(x, block):
    n = x.shape[0]
    half = 1
    while half < block:
        for start in range(0, n, 2 * half):
            for j in range(start, start + half):
                a = x[j]
                b = x[j + half]
                x[j] = a + b
                x[j + half] = a - b
        half *= 2


@njit(parallel=True, cache=True)
def recurrence_forward(signs, z, out, block, scale):
    """Fill ``out`` (T, N, n) with the states ``H``; ``signs`` (n,) ±1, ``z`` (T, N, n)."""
    steps, rows, n = z.shape
    for r in prange(rows):
        buf = np.empty(n, dtype=z.dtype)
        out[0, r, :] = z[0, r, :]
        for t in range(1, steps):
            buf[:] = out[t - 1, r, :]
            _fwht_inplace(buf, block)
            for i in range(n):
                out[t, r, i] = signs[i] * (scale * buf[i]) + z[t, r, i]


@njit(parallel=True, cache=True)
def recurrence_backward(signs, z, states, grad_states, grad_z, grad_signs_rows, block, scale):
    """Adjoint pass.

    Fills ``grad_z`` (T, N, n) with ``λ[t] = G[t] + Wᵀ λ[t+1]`` (``Wᵀ = scale · B diag(s)``), and
    ``grad_signs_rows`` (N, n) with ``Σ_{t≥1} λ[t] ⊙ (H[t] - Z[t])`` per row: since
    ``H[t] - Z[t] = s ⊙ scale · B H[t-1]``, multiplying the row sum by ``s`` gives ``∂L/∂s``.
    """
    steps, rows, n = states.shape
    for r in prange(rows):
        buf = np.empty(n, dtype=states.dtype)
        acc = np.zeros(n, dtype=states.dtype)
        grad_z[steps - 1, r, :] = grad_states[steps - 1, r, :]
        for t in range(steps - 1, 0, -1):
            for i in range(n):
                acc[i] += grad_z[t, r, i] * (states[t, r, i] - z[t, r, i])
                buf[i] = signs[i] * grad_z[t, r, i]
            _fwht_inplace(buf, block)
            for i in range(n):
                grad_z[t - 1, r, i] = grad_states[t - 1, r, i] + scale * buf[i]
        grad_signs_rows[r, :] = acc
