"""Compiled CPU kernels (numba) for the signed-Hadamard linear recurrence.

Batch-major row form, for ``N`` independent rows of ``T`` steps of width ``n``::

    H[:, 0] = Z[:, 0],   H[:, t] = s ⊙ (scale · B H[:, t-1]) + Z[:, t],   B = I_{n/m} ⊗ H_m,  scale = 1/sqrt(m)

Each step costs ``n log2(m)`` additions and ``n`` sign-scalings per row, against ``n²``
multiply-adds for a dense matrix–vector product. Rows are independent and run in parallel. Two
layouts of the working state, chosen by measurement (docs/performance.md):

- one row at a time (a contiguous ``n``-vector; butterflies vectorize once they span 8+ entries):
  the faster forward pass for few rows, and the faster backward pass at every size measured;
- tiles of ``TILE`` rows held transposed (``n × TILE``), so that every butterfly is a vector
  operation across the tile: the faster forward pass for many rows.

The functions take NumPy arrays (float32 or float64) and know nothing of autograd;
``hadamrnn.engine`` wraps them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["recurrence_forward", "recurrence_backward"]

TILE = 16


@njit(inline="always", cache=True)
def _fwht_row(x, block):
    """Unnormalised ``I ⊗ H_block`` on the vector ``x``, in place."""
    n = x.shape[0]
    half = 1
    if block >= 4:  # the first two rounds together, as a 4-point transform per group of 4
        for s in range(0, n, 4):
            a0, a1, a2, a3 = x[s], x[s + 1], x[s + 2], x[s + 3]
            b0, b1, b2, b3 = a0 + a1, a0 - a1, a2 + a3, a2 - a3
            x[s], x[s + 1], x[s + 2], x[s + 3] = b0 + b2, b1 + b3, b0 - b2, b1 - b3
        half = 4
    while half < block:
        for start in range(0, n, 2 * half):
            for j in range(start, start + half):
                a = x[j]
                b = x[j + half]
                x[j] = a + b
                x[j + half] = a - b
        half *= 2


@njit(inline="always", cache=True)
def _fwht_columns(x, block):
    """Unnormalised ``I ⊗ H_block`` on every column of ``x`` (n × width), in place."""
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
def _forward_rows(signs, table, index, out, transformed, block, scale):
    rows, steps, n = transformed.shape
    every_step = out.shape[1] == steps
    for r in prange(rows):
        state = np.empty(n, dtype=out.dtype)
        z = table[index[r, 0]]
        for i in range(n):
            state[i] = z[i]
        for t in range(1, steps):
            if every_step:
                out[r, t - 1, :] = state
            _fwht_row(state, block)
            z = table[index[r, t]]
            for i in range(n):
                rotated = scale * state[i]
                transformed[r, t, i] = rotated
                state[i] = signs[i] * rotated + z[i]
        out[r, out.shape[1] - 1, :] = state


@njit(parallel=True, cache=True)
def _forward_tiles(signs, table, index, out, transformed, block, scale):
    rows, steps, n = transformed.shape
    every_step = out.shape[1] == steps
    for tile in prange((rows + TILE - 1) // TILE):
        first = tile * TILE
        width = min(TILE, rows - first)
        state = np.empty((n, width), dtype=out.dtype)
        for c in range(width):
            z = table[index[first + c, 0]]
            for i in range(n):
                state[i, c] = z[i]
        for t in range(1, steps):
            if every_step:
                for c in range(width):
                    for i in range(n):
                        out[first + c, t - 1, i] = state[i, c]
            _fwht_columns(state, block)
            for c in range(width):
                z = table[index[first + c, t]]
                for i in range(n):
                    rotated = scale * state[i, c]
                    transformed[first + c, t, i] = rotated
                    state[i, c] = signs[i] * rotated + z[i]
        for c in range(width):
            for i in range(n):
                out[first + c, out.shape[1] - 1, i] = state[i, c]


def recurrence_forward(signs: np.ndarray, table: np.ndarray, index: np.ndarray, out: np.ndarray,
                       transformed: np.ndarray, block: int, scale: float) -> None:
    """Run the recurrence for inputs ``Z[r, t] = table[index[r, t]]``.

    ``signs`` (n,) ±1; ``table`` (V, n); ``index`` (N, T) int64; all C-contiguous. Dense inputs
    pass ``table = Z.reshape(N·T, n)`` and ``index = arange(N·T).reshape(N, T)``. Fills ``out`` with
    every state, shape (N, T, n), or with the last one only when its shape is (N, 1, n), and
    ``transformed`` (N, T, n) with ``scale · B H[t-1]`` for ``t ≥ 1`` (what the backward pass needs;
    ``transformed[:, 0]`` is not written).
    """
    kernel = _forward_tiles if out.shape[0] >= 2 * TILE else _forward_rows
    kernel(signs, table, index, out, transformed, block, scale)


@njit(inline="always", cache=True)
def _scatter(target, values, overwrite):
    if overwrite:
        target[:] = values
    else:
        target += values


@njit(parallel=True, cache=True)
def recurrence_backward(signs, index, transformed, grad_states, grad_last, has_grad_states, grad_tables, chunks,
                        grad_signs_rows, block, scale):
    """Adjoint pass for inputs ``Z[r, t] = table[index[r, t]]``.

    ``G[t]`` is ``grad_states[:, t]`` for ``t < T-1`` (zero when ``has_grad_states`` is false, and
    then ``grad_states`` is not read) and ``grad_last`` (N, n) at ``t = T-1``. With the adjoint
    ``λ[t] = G[t] + Wᵀ λ[t+1]`` (``Wᵀ = scale · B diag(s)``), adds ``λ[t]`` of every row ``r`` and step
    ``t`` into ``grad_tables[k, index[r, t]]``: rows are split into ``chunks`` contiguous chunks run
    in parallel, and chunk ``k`` owns ``grad_tables[k]``, so no two threads add into the same row.
    When no table row is used twice (dense inputs), pass a single table (shape (1, V, n)), which
    every chunk then shares and which is written, not added to (it need not be zeroed). Fills ``grad_signs_rows`` (N, n) with
    ``Σ_{t≥1} λ[t] ⊙ transformed[t]`` (``transformed[t] = scale · B H[t-1]``, from the forward pass),
    summed over rows for ``∂L/∂s``.
    """
    rows, steps, n = transformed.shape
    shared = grad_tables.shape[0] == 1
    for k in prange(chunks):
        adjoint = np.empty(n, dtype=transformed.dtype)
        total = np.empty(n, dtype=transformed.dtype)
        grad_table = grad_tables[k - k if shared else k]  # (not "0 if …": numba would unify 0 and k to float)
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            total[:] = 0.0
            adjoint[:] = grad_last[r]
            _scatter(grad_table[index[r, steps - 1]], adjoint, shared)
            for t in range(steps - 1, 0, -1):
                for i in range(n):
                    a = adjoint[i]
                    total[i] += a * transformed[r, t, i]
                    adjoint[i] = signs[i] * a
                _fwht_row(adjoint, block)
                if has_grad_states:
                    for i in range(n):
                        adjoint[i] = grad_states[r, t - 1, i] + scale * adjoint[i]
                else:
                    for i in range(n):
                        adjoint[i] = scale * adjoint[i]
                _scatter(grad_table[index[r, t - 1]], adjoint, shared)
            for i in range(n):
                grad_signs_rows[r, i] = total[i]


def threads() -> int:
    """Threads numba runs parallel loops on."""
    from numba import get_num_threads

    return get_num_threads()
