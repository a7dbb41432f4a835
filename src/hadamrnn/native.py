"""Compiled CPU kernels (numba) for the signed-Hadamard linear recurrence.

Batch-major row form, for ``N`` independent rows of ``T`` steps of width ``n``::

    H[:, 0] = Z[:, 0],   H[:, t] = s ⊙ (scale · B H[:, t-1]) + Z[:, t],   B = I_{n/m} ⊗ H_m,  scale = 1/sqrt(m)

Each step costs ``n log2(m)`` additions and ``n`` sign-scalings per row, against ``n²``
multiply-adds for a dense matrix–vector product. Rows are processed in tiles of ``TILE`` held
transposed (``n × TILE``), so every butterfly is a vector operation across the rows of the tile;
tiles run in parallel. The functions take NumPy arrays (float32 or float64) and know nothing of
autograd; ``hadamrnn.engine`` wraps them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["recurrence_forward", "recurrence_backward"]

TILE = 16


@njit(inline="always", cache=True)
def _fwht_columns(x, block):
    """Unnormalised ``I ⊗ H_block`` applied to every column of ``x`` (n × R), in place."""
    n, width = x.shape
    half = 1
    while half < block:
        for start in range(0, n, 2 * half):
            for j in range(start, start + half):
                for c in range(width):
                    a = x[j, c]
                    b = x[j + half, c]
                    x[j, c] = a + b
                    x[j + half, c] = a - b
        half *= 2


@njit(parallel=True, cache=True)
def recurrence_forward(signs, z, out, block, scale):
    """Fill ``out`` (N, T, n) with the states; ``signs`` (n,) ±1, ``z`` (N, T, n)."""
    rows, steps, n = z.shape
    for tile in prange((rows + TILE - 1) // TILE):
        first = tile * TILE
        width = min(TILE, rows - first)
        state = np.empty((n, width), dtype=z.dtype)
        for c in range(width):
            for i in range(n):
                state[i, c] = z[first + c, 0, i]
                out[first + c, 0, i] = state[i, c]
        for t in range(1, steps):
            _fwht_columns(state, block)
            for c in range(width):
                for i in range(n):
                    value = signs[i] * (scale * state[i, c]) + z[first + c, t, i]
                    state[i, c] = value
                    out[first + c, t, i] = value


@njit(parallel=True, cache=True)
def recurrence_backward(signs, z, states, grad_states, grad_last, grad_z, grad_signs_rows, block, scale):
    """Adjoint pass.

    ``G[t]`` is ``grad_states[:, t]`` for ``t < T-1`` and ``grad_last`` (N, n) at ``t = T-1`` (pass a
    zero-stride ``grad_states`` when only the last state is used). Fills ``grad_z`` (N, T, n) with
    ``λ[t] = G[t] + Wᵀ λ[t+1]`` (``Wᵀ = scale · B diag(s)``), and
    ``grad_signs_rows`` (N, n) with ``Σ_{t≥1} λ[t] ⊙ (H[t] - Z[t])`` per row: since
    ``H[t] - Z[t] = s ⊙ scale · B H[t-1]``, multiplying the row sum by ``s`` gives ``∂L/∂s``.
    """
    rows, steps, n = states.shape
    for tile in prange((rows + TILE - 1) // TILE):
        first = tile * TILE
        width = min(TILE, rows - first)
        adjoint = np.empty((n, width), dtype=states.dtype)
        total = np.zeros((n, width), dtype=states.dtype)
        for c in range(width):
            for i in range(n):
                adjoint[i, c] = grad_last[first + c, i]
                grad_z[first + c, steps - 1, i] = adjoint[i, c]
        for t in range(steps - 1, 0, -1):
            for c in range(width):
                for i in range(n):
                    r = first + c
                    total[i, c] += adjoint[i, c] * (states[r, t, i] - z[r, t, i])
                    adjoint[i, c] = signs[i] * adjoint[i, c]
            _fwht_columns(adjoint, block)
            for c in range(width):
                for i in range(n):
                    value = grad_states[first + c, t - 1, i] + scale * adjoint[i, c]
                    adjoint[i, c] = value
                    grad_z[first + c, t - 1, i] = value
        for c in range(width):
            for i in range(n):
                grad_signs_rows[first + c, i] = total[i, c]
