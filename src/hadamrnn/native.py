"""Compiled CPU kernels (numba) for the signed-Hadamard linear recurrence and what surrounds it.

Batch-major row form, for ``N`` independent rows of ``T`` steps of width ``n``::

    h[0] = z[0],   h[t] = s ⊙ (scale · B h[t-1]) + z[t],   B = I_{n/m} ⊗ H_m,  scale = 1/sqrt(m)

Each step costs ``n log2(m)`` additions and ``n`` sign-scalings per row, against ``n²``
multiply-adds for a dense matrix–vector product. Rows are independent and run in parallel.

The inputs ``z[t]`` come from one of two sources:

- a table: ``z[r, t] = table[index[r, t]]`` (projected token tables; or dense inputs already
  projected, ``table = Z.reshape(N·T, n)`` with ``index = arange``);
- a projection computed in the kernel: ``z[r, t] = U x[r, t] + b`` for float inputs ``x`` of few
  features, so that no ``(N, T, n)`` array of inputs is ever built (the product is skipped for
  features that are zero, as in one-hot inputs).

and the pass returns one of:

- ``OUT_LAST``: the last state ``h[T-1]`` (N, n);
- ``OUT_STATES``: every state (N, T, n);
- ``OUT_HEAD``: the read-out ``V relu(h[t]) + c`` at every step (N, T, C), so that no state leaves
  the kernel.

The backward pass keeps no state from the forward pass but the last one: ``W`` is orthogonal and
``Wᵀ`` is as cheap as ``W``, so it walks back ``h[t-1] = scale · B (s ⊙ (h[t] - z[t]))`` beside the
adjoint ``λ[t-1] = G[t-1] + scale · B (s ⊙ λ[t])`` (``G`` the gradient reaching the states). Memory is
then ``O(N n)`` floats instead of ``O(N T n)``; the price is one more transform per step, and a
rounding gap between the walked-back and the forward states that grows like ``sqrt(T)`` (tested).
That gap is harmless where the gradient is continuous in the states, but not at the read-out's
kink: a state that was exactly 0 comes back as ±1e-17. So ``OUT_HEAD`` keeps the forward pass's
relu pattern, one byte per state (a quarter of the states' size in float32).

``fixed_point_forward``/``fixed_point_backward`` run the fixed-point recurrence of
``hadamrnn.fixedpoint`` in integers; saturation makes that step non-invertible, so they keep the
int16 states and a saturation byte per state instead of walking back.

The functions take NumPy arrays (float32 or float64) and know nothing of autograd;
``hadamrnn.engine`` wraps them. Arrays a mode does not use are passed as 1-element dummies.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["OUT_LAST", "OUT_STATES", "OUT_HEAD", "recurrence_forward", "recurrence_backward", "threads",
           "set_threads", "fixed_point_forward", "fixed_point_backward"]

OUT_LAST, OUT_STATES, OUT_HEAD = 0, 1, 2

# Reductions (the read-out's dot products) may be reassociated and vectorised; nothing else changes.
_FAST = {"reassoc", "contract"}


@njit(inline="always", cache=True)
def _fwht_scaled(x, work, block, scale):
    """``scale · (I ⊗ H_block) x``, computed between ``x`` and the scratch vector ``work``.

    Returns ``(result, spare)``: the result lands in ``x`` or in ``work`` (by the parity of the
    number of rounds), so callers rebind both names instead of copying it back.

    Pease's form: every round maps a block ``s`` to ``[s[0::2] + s[1::2], s[0::2] - s[1::2]]``, and
    ``log2(block)`` such rounds give ``H_block``. Every round is then the same unit-stride loop
    between two arrays, which LLVM vectorises (about twice as fast here as in-place butterflies,
    whose first rounds pair neighbours inside one vector register). The scale is applied in the
    last round.
    """
    n = x.shape[0]
    source, target = x, work
    half = 1
    if block == 1:
        for i in range(n):
            x[i] *= scale
    while half < block:
        factor = scale if 2 * half == block else scale / scale
        for start in range(0, n, block):
            pairs = source[start:start + block]
            sums, differences = target[start:start + block // 2], target[start + block // 2:start + block]
            for j in range(sums.size):
                a = pairs[2 * j]
                b = pairs[2 * j + 1]
                sums[j] = (a + b) * factor
                differences[j] = (a - b) * factor
        source, target = target, source
        half *= 2
    return source, target


@njit(inline="always", cache=True)
def _load_input(z, r, t, project, inputs, projection_t, bias, table, index):
    """``z = U x[r, t] + b`` (``projection_t = Uᵀ``, shape (d, n)) or ``z = table[index[r, t]]``."""
    if project:
        z[:] = bias
        for j in range(inputs.shape[2]):
            x = inputs[r, t, j]
            if x != 0:
                column = projection_t[j]
                for i in range(z.size):
                    z[i] += x * column[i]
    else:
        z[:] = table[index[r, t]]


@njit(parallel=True, cache=True, fastmath=_FAST)
def recurrence_forward(signs, project, inputs, projection_t, bias, table, index, steps, output,
                       last, states, head_weight, head_bias, logits, positive, prefix_length, pad_row, prefix,
                       block, scale):
    """Run the recurrence; fill ``last`` (N, n) always, and ``states`` (N, T, n) for ``OUT_STATES``
    or ``logits`` (N, T, C) = ``head_weight relu(h) + head_bias`` for ``OUT_HEAD``, with the relu's
    pattern ``h > 0`` in ``positive`` (N, T, n) uint8: the backward pass walks the states back only
    up to rounding, and ``relu'`` must be the forward's. (One byte per state, not one bit: packing
    bits made the loops scalar and the copy-task step 2.5× slower, measured.)

    Shared prefix (``OUT_LAST`` with a table): row ``r``'s first ``prefix_length[r]`` inputs are all
    ``table[pad_row]`` (pre-padded token sequences), so its states there are those of one common
    trajectory, computed once into ``prefix`` (P, n), ``P = max(prefix_length)``; each row starts
    from it. Pass zeros (and P = 0) otherwise.

    ``scale`` must have the arrays' dtype (a float64 constant would promote every product)."""
    rows, n = last.shape
    zero = scale - scale
    state, work = np.empty(n, dtype=last.dtype), np.empty(n, dtype=last.dtype)
    for t in range(prefix.shape[0]):
        if t == 0:
            state[:] = table[pad_row]
        else:
            state, work = _fwht_scaled(state, work, block, scale)
            for i in range(n):
                state[i] = signs[i] * state[i] + table[pad_row, i]
        prefix[t] = state
    for r in prange(rows):
        state = np.empty(n, dtype=last.dtype)
        work = np.empty(n, dtype=last.dtype)
        z = np.empty(n, dtype=last.dtype)
        active = np.empty(n, dtype=last.dtype)
        start = prefix_length[r]
        if start > 0:
            state[:] = prefix[start - 1]
        for t in range(start, steps):
            _load_input(z, r, t, project, inputs, projection_t, bias, table, index)
            if t == 0:
                state[:] = z
            else:
                state, work = _fwht_scaled(state, work, block, scale)
                for i in range(n):
                    state[i] = signs[i] * state[i] + z[i]
            if output == OUT_STATES:
                states[r, t, :] = state
            elif output == OUT_HEAD:
                pattern = positive[r, t]
                for i in range(n):
                    active[i] = max(state[i], zero)
                    pattern[i] = state[i] > 0
                out = logits[r, t]
                for c in range(out.size):
                    weights = head_weight[c]
                    total = head_bias[c]
                    for i in range(n):
                        total += weights[i] * active[i]
                    out[c] = total
        last[r, :] = state


@njit(parallel=True, cache=True, fastmath=_FAST)
def recurrence_backward(signs, project, inputs, projection_t, bias, table, index, steps, output, last,
                        grad_last, grad_states, head_weight, grad_logits, positive, prefix_length, pad_row, prefix,
                        chunks,
                        grad_signs, grad_projection_t, grad_bias, grad_tables, shared, grad_head_weight,
                        grad_head_bias, block, scale):
    """Adjoint pass. Rows are split into ``chunks`` contiguous chunks run in parallel; chunk ``k``
    adds its gradients into its own slice ``[k]`` of every ``grad_*`` accumulator (zeroed by the
    caller), so no two threads write the same memory:

    - ``grad_signs`` (K, n): ``Σ λ[t] ⊙ scale · B h[t-1]`` over ``t ≥ 1``;
    - with a projection: ``grad_projection_t`` (K, d, n) ``Σ x[t] λ[t]ᵀ`` and ``grad_bias`` (K, n) ``Σ λ[t]``;
    - with a table: ``grad_tables`` (K, V, n) ``Σ λ[t]`` into row ``index[r, t]``; when no row of the
      index repeats, ``shared`` is true and a single table (shape (1, V, n)) serves every chunk,
      written, not added to (no zeroing);
    - with ``OUT_HEAD``: ``grad_head_weight`` (K, C, n) and ``grad_head_bias`` (K, C).

    The gradient reaching the states is ``grad_last`` (N, n) at ``T-1`` (``OUT_LAST``), ``grad_states``
    (N, T, n) (``OUT_STATES``), or through the read-out from ``grad_logits`` (N, T, C) (``OUT_HEAD``,
    with the forward pass's ``positive``). ``scale`` must have the arrays' dtype.

    Shared prefix (see :func:`recurrence_forward`): a row stops walking back where its prefix ends
    and hands its adjoint there to one common adjoint pass over the prefix trajectory, which adds
    the gradients of every row's prefix at once (the adjoint is linear, so the sum is exact).
    """
    rows, n = last.shape
    zero = scale - scale
    handed = np.zeros((chunks, prefix.shape[0], n), dtype=last.dtype)  # adjoints handed to the prefix pass
    for k in prange(chunks):
        state = np.empty(n, dtype=last.dtype)
        adjoint = np.empty(n, dtype=last.dtype)
        work = np.empty(n, dtype=last.dtype)
        z = np.empty(n, dtype=last.dtype)
        active = np.empty(n, dtype=last.dtype)
        through_head = np.empty(n, dtype=last.dtype)
        gate = np.empty(n, dtype=last.dtype)  # relu' of the forward pass, 0 or 1
        signs_total = grad_signs[k]
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            state[:] = last[r]
            if output == OUT_LAST:
                adjoint[:] = grad_last[r]
            else:
                adjoint[:] = zero
            for t in range(steps - 1, -1, -1):
                if t < steps - 1:  # step back from t+1: state ← h[t], adjoint ← Wᵀ λ[t+1]
                    for i in range(n):
                        rotated = signs[i] * (state[i] - z[i])  # = scale · B h[t]
                        signs_total[i] += adjoint[i] * rotated
                        state[i] = rotated
                        adjoint[i] *= signs[i]
                    state, work = _fwht_scaled(state, work, block, scale)
                    adjoint, work = _fwht_scaled(adjoint, work, block, scale)
                if t < prefix_length[r]:  # inside the shared prefix: the common pass takes over
                    for i in range(n):
                        handed[k, t, i] += adjoint[i]
                    break
                if output == OUT_STATES:
                    gradient = grad_states[r, t]
                    for i in range(n):
                        adjoint[i] += gradient[i]
                elif output == OUT_HEAD:
                    pattern = positive[r, t]
                    for i in range(n):
                        gate[i] = pattern[i]
                        active[i] = state[i] * gate[i]
                    through_head[:] = zero
                    gradient = grad_logits[r, t]
                    for c in range(gradient.size):
                        g = gradient[c]
                        grad_head_bias[k, c] += g
                        weights, weights_total = head_weight[c], grad_head_weight[k, c]
                        for i in range(n):
                            weights_total[i] += g * active[i]
                            through_head[i] += g * weights[i]
                    for i in range(n):
                        adjoint[i] += through_head[i] * gate[i]
                # λ[t] is complete: it is the gradient of z[t]
                if project:
                    bias_total = grad_bias[k]
                    for i in range(n):
                        bias_total[i] += adjoint[i]
                    for j in range(inputs.shape[2]):
                        x = inputs[r, t, j]
                        if x != 0:
                            column_total = grad_projection_t[k, j]
                            for i in range(n):
                                column_total[i] += x * adjoint[i]
                else:
                    target = grad_tables[k - k if shared else k, index[r, t]]  # ("0 if …" would unify to float)
                    if shared:
                        target[:] = adjoint
                    else:
                        for i in range(n):
                            target[i] += adjoint[i]
                if t > 0:
                    _load_input(z, r, t, project, inputs, projection_t, bias, table, index)
    adjoint = np.zeros(n, dtype=last.dtype)
    work = np.empty(n, dtype=last.dtype)
    for t in range(prefix.shape[0] - 1, -1, -1):
        if t < prefix.shape[0] - 1:
            for i in range(n):
                grad_signs[0, i] += adjoint[i] * signs[i] * (prefix[t + 1, i] - table[pad_row, i])
                adjoint[i] *= signs[i]
            adjoint, work = _fwht_scaled(adjoint, work, block, scale)
        for k in range(chunks):
            for i in range(n):
                adjoint[i] += handed[k, t, i]
        for i in range(n):
            grad_tables[0, pad_row, i] += adjoint[i]


def threads() -> int:
    """Threads numba runs parallel loops on."""
    from numba import get_num_threads

    return get_num_threads()


def set_threads(count: int) -> None:
    """Run this process's CPU work on ``count`` threads: PyTorch's operations and these kernels.

    ``torch.set_num_threads`` alone leaves numba's pool at one thread per core, so K processes each
    given 1/K of the cores would still run the kernels on K times as many threads as cores (two IMDB
    HadamRNN runs at once on 2 cores: 26 s per epoch each, and 9.5 s with the threads shared out).
    """
    import numba
    import torch

    if count < 1:
        raise ValueError(f"threads must be at least 1, got {count}")
    torch.set_num_threads(count)
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))


@njit(inline="always", cache=True)
def _fwht_in_place(x, block):
    """``(I ⊗ H_block) x`` in place, unnormalised (exact on integers)."""
    n = x.shape[0]
    half = 1
    while half < block:
        for start in range(0, n, 2 * half):
            for k in range(start, start + half):
                p = x[k]
                q = x[k + half]
                x[k] = p + q
                x[k + half] = p - q
        half *= 2


@njit(inline="always", cache=True)
def _round_product(a, factor, shift):
    """``round(a · factor / 2^shift)``, halves up, on int64 (``hadamrnn.deploy.integer``): the
    ``2^G / sqrt(m)`` of the recurrence, U's scale and the final rounding of a step."""
    if shift > 0:
        return (a * factor + (np.int64(1) << (shift - 1))) >> shift
    return a * factor


@njit(inline="always", cache=True)
def _fixed_point_input(z, r, t, project, inputs, levels, multiplier, input_shift, bias, table, index):
    """``z = round(M (L_U x[r, t]) / 2^S) + b`` in integers (``G`` bits finer than a state), or
    ``z = table[index[r, t]]``."""
    if project:
        for i in range(z.size):
            total = 0
            for j in range(inputs.shape[2]):
                total += levels[i, j] * inputs[r, t, j]
            z[i] = _round_product(total, multiplier, input_shift) + bias[i]
    else:
        z[:] = table[index[r, t]]


@njit(parallel=True, cache=True)
def fixed_point_forward(signs, project, inputs, levels, multiplier, input_shift, bias, table, index, block, rotation,
                        shift, guard, low, high, states, saturated):
    """The fixed-point recurrence of ``hadamrnn.fixedpoint``, in integers:
    ``h[t] = clip(round((s ⊙ round((B h[t-1]) · rotation / 2^shift) + z[t]) / 2^guard), low, high)``,
    ``h[-1] = 0``, where ``rotation / 2^shift = 2^guard / sqrt(block)`` and ``z`` is ``guard`` bits finer.

    ``signs`` (n,) int64 ±1. The input terms ``z[t]`` are computed from integer ``inputs`` (N, T, d)
    with U's levels (n, d), the multiplier and shift of U's scale and the integer bias (n,)
    (``project``), or read as ``table[index[r, t]]`` (int64 rows). Fills ``states`` (N, T, n), int16
    where ``low``, ``high`` fit 16 bits, else int64, and ``saturated`` (N, T, n) uint8 (1 where the
    value before clipping left ``[low, high]``: the backward pass gives it no gradient). Given
    ``states`` and ``saturated`` of shape (N, 1, n), only the last step's are kept (inference)."""
    rows, kept, n = states.shape
    steps = inputs.shape[1] if project else index.shape[1]
    for r in prange(rows):
        h = np.zeros(n, dtype=np.int64)
        z = np.empty(n, dtype=np.int64)
        for t in range(steps):
            _fixed_point_input(z, r, t, project, inputs, levels, multiplier, input_shift, bias, table, index)
            _fwht_in_place(h, block)
            for i in range(n):
                value = _round_product(signs[i] * _round_product(h[i], rotation, shift) + z[i], 1, guard)
                clipped = min(max(value, low), high)
                slot = t if kept == steps else 0
                saturated[r, slot, i] = clipped != value
                h[i] = clipped
                states[r, slot, i] = clipped


@njit(parallel=True, cache=True)
def fixed_point_backward(signs, project, inputs, index, states, saturated, all_steps, grad_states, grad_last, block,
                         rotation, shift, guard, chunks, grad_signs, grad_levels, grad_bias, grad_table):
    """Adjoint of :func:`fixed_point_forward` with straight-through rounding: the gradient of the
    value before clipping (in state units) is ``λ[t] ⊙ (1 - saturated[t])``; it is the gradient of
    ``z[t] / 2^guard``, adds ``λ ⊙ rotated[t]`` to the signs' (``rotated[t]``, in state units,
    recomputed from ``states[t-1]``), and reaches
    ``h[t-1]`` as ``(B (s ⊙ λ)) / sqrt(block)``. The gradient reaching the states is ``grad_states``
    (N, T, n) when ``all_steps``, else ``grad_last`` (N, n) at the last step.

    Accumulates, one partial sum per chunk of rows: ``grad_signs`` (chunks, n); with ``project``,
    ``grad_levels`` (chunks, n, d) ``Σ λ x[t]ᵀ`` and ``grad_bias`` (chunks, n) ``Σ λ`` (gradients with
    respect to ``L_U x`` and ``b`` in integer units); else ``grad_table`` (chunks, V, n)."""
    rows, steps, n = states.shape
    scale = 1.0 / np.sqrt(block)
    unit = 1.0 / 2.0 ** guard
    for k in prange(chunks):
        adjoint = np.empty(n, dtype=np.float64)
        a = np.empty(n, dtype=np.int64)
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            adjoint[:] = 0.0
            if not all_steps:
                adjoint[:] = grad_last[r]
            for t in range(steps - 1, -1, -1):
                for i in range(n):
                    if all_steps:
                        adjoint[i] += grad_states[r, t, i]
                    if saturated[r, t, i]:
                        adjoint[i] = 0.0
                if project:
                    for i in range(n):
                        grad_bias[k, i] += adjoint[i]
                    for j in range(inputs.shape[2]):
                        x = inputs[r, t, j]
                        if x != 0:
                            for i in range(n):
                                grad_levels[k, i, j] += adjoint[i] * x
                else:
                    row = grad_table[k, index[r, t]]
                    for i in range(n):
                        row[i] += adjoint[i]
                if t == 0:
                    break
                for i in range(n):
                    a[i] = states[r, t - 1, i]
                _fwht_in_place(a, block)
                for i in range(n):
                    grad_signs[k, i] += adjoint[i] * (_round_product(a[i], rotation, shift) * unit)
                    adjoint[i] *= signs[i]
                _fwht_in_place(adjoint, block)
                for i in range(n):
                    adjoint[i] *= scale
