"""Whole-sequence linear recurrence ``h_t = W h_{t-1} + U x_t + b``, ``h_0 = 0``.

An engine takes the recurrent parametrization and latent, the raw inputs and the input projection,
and returns the states the read-out needs: ``h_T`` of shape ``(B, n)`` (``readout="last"``) or every
``h_t`` stacked as ``(B, T, n)`` (``readout="all"``). The states are pre-activations: the
non-linearity belongs to the read-out, not to the recurrence.

Engines (all exchangeable; each fast one is tested against ``loop``):

- ``loop``: the plain step-by-step oracle: dense ``W``, inputs projected at each step, autograd
  through every step; exactly what the reference implementation does.
- ``fused``: the recurrence over the whole sequence as one autograd node. ``W h`` is a fast
  Walsh–Hadamard transform plus sign flips, run in compiled code on the CPU (``hadamrnn.native``;
  elsewhere the same steps as torch operations); the backward pass runs the adjoint recurrence with
  ``Wᵀ = (I ⊗ H_m) diag(s) / sqrt(m)`` instead of keeping a graph of ``T`` steps. Float inputs are
  projected for all steps in one product; token inputs project only the distinct tokens of the
  batch (``U e + b = (E Uᵀ + b)[token]``), and the compiled kernel gathers their rows.
- ``kernel``: many-to-one with float inputs: ``h_T = Σ_k W^k [U | b] [x_{T-1-k}; 1]``. The kernel
  ``W^k [U | b]`` (``T × n × (d+1)``) is the ``fused`` recurrence driven by an impulse, independent
  of the batch; one contraction with the inputs then gives ``h_T``.
- ``auto``: ``kernel`` when ``readout="last"``, inputs are floats and ``d + 1 < B`` (its sequential
  work runs on ``d + 1`` columns instead of ``B`` rows); otherwise ``fused``.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from . import native
from .hadamard import fwht
from .recurrent import SignedHadamard

__all__ = ["ENGINES", "recur", "choose_engine", "loop", "fused", "kernel", "signed_hadamard_recurrence"]

Readout = Literal["last", "all"]


def _embed(inputs: Tensor, embedding: Tensor | None) -> Tensor:
    return inputs if embedding is None else F.embedding(inputs, embedding, padding_idx=0)


def loop(recurrence: SignedHadamard, latent: Tensor, inputs: Tensor, U: Tensor, b: Tensor,
         readout: Readout, embedding: Tensor | None = None) -> Tensor:
    """Step-by-step recurrence with the dense ``W``; the oracle for every faster engine."""
    x = _embed(inputs, embedding)
    W = recurrence(latent).to(x.dtype)
    h = x.new_zeros(x.shape[0], W.shape[0])
    states = []
    for x_t in x.unbind(1):  # unbind, not x[:, t]: slicing's backward would zero-fill all of x per step
        h = F.linear(h, W) + F.linear(x_t, U, b)
        if readout == "all":
            states.append(h)
    return torch.stack(states, dim=1) if readout == "all" else h


def _native(tensor: Tensor) -> bool:
    """Use the compiled kernels (CPU tensors); elsewhere the same steps run as torch operations."""
    return tensor.device.type == "cpu"


class _SignedHadamardRecurrence(torch.autograd.Function):
    """``H[:, 0] = Z[:, 0]``, ``H[:, t] = s ⊙ (B H[:, t-1]) / sqrt(m) + Z[:, t]`` with ``Z[r, t] = table[index[r, t]]``.

    ``table`` (V, n), ``index`` (N, T) int64: token inputs pass their projected token table, dense
    inputs ``Z.reshape(N·T, n)`` with ``index = arange``. Returns every state ``(N, T, n)``, or only
    ``H[:, -1]`` when ``last_only`` (then the backward pass reads no gradient for the other steps).
    """

    @staticmethod
    def forward(ctx, signs: Tensor, table: Tensor, index: Tensor, block: int, last_only: bool,  # type: ignore[override]
                unique_index: bool) -> Tensor:
        scale = 1.0 / math.sqrt(block)
        rows, steps = index.shape
        out = table.new_empty(rows, 1 if last_only else steps, table.shape[1])
        # transformed[:, t] = B H[t-1] / sqrt(m): all the backward pass needs besides the signs.
        transformed = table.new_empty(rows, steps, table.shape[1])
        if _native(table):
            native.recurrence_forward(signs.numpy(), table.numpy(), index.numpy(), out.numpy(), transformed.numpy(),
                                      block, scale)
        else:
            z = table[index]
            state = z[:, 0]
            states = [state]
            for t in range(1, steps):
                transformed[:, t] = fwht(state, block)
                state = signs * transformed[:, t] + z[:, t]
                states.append(state)
            out = state[:, None] if last_only else torch.stack(states, 1)
        ctx.block, ctx.last_only, ctx.unique_index, ctx.table_rows = block, last_only, unique_index, table.shape[0]
        ctx.save_for_backward(signs, index, transformed)
        return out[:, 0] if last_only else out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        signs, index, transformed = ctx.saved_tensors
        block = ctx.block
        if ctx.last_only:
            grad_last = grad.contiguous()
            grad_states = grad.new_zeros(1, 1, 1)  # not read: every step but the last has zero gradient
        else:
            grad_states = grad.contiguous()
            grad_last = grad_states[:, -1].contiguous()
        rows, n = transformed.shape[0], transformed.shape[2]
        if _native(transformed):
            # One shared table when no row repeats; else one partial table per chunk of rows, summed after.
            chunks = rows if ctx.unique_index else min(rows, 2 * native.threads())
            if ctx.unique_index:  # every row written exactly once: no zeroing, no partial sums
                grad_tables = transformed.new_empty(1, ctx.table_rows, n)
            else:
                grad_tables = transformed.new_zeros(chunks, ctx.table_rows, n)
            grad_signs_rows = transformed.new_empty(rows, n)
            native.recurrence_backward(signs.numpy(), index.numpy(), transformed.numpy(), grad_states.numpy(),
                                       grad_last.numpy(), not ctx.last_only, grad_tables.numpy(), chunks,
                                       grad_signs_rows.numpy(), block, 1.0 / math.sqrt(block))
            grad_table = grad_tables[0] if ctx.unique_index else grad_tables.sum(0)
            return grad_signs_rows.sum(0), grad_table, None, None, None, None
        grad_z = torch.empty_like(transformed)
        adjoint = grad_last
        grad_z[:, -1] = adjoint
        for t in range(transformed.shape[1] - 1, 0, -1):
            adjoint = fwht(signs * adjoint, block) + (0 if ctx.last_only else grad_states[:, t - 1])
            grad_z[:, t - 1] = adjoint
        grad_signs = torch.einsum("btn,btn->n", grad_z[:, 1:], transformed[:, 1:])
        grad_table = transformed.new_zeros(ctx.table_rows, n).index_add_(0, index.reshape(-1), grad_z.reshape(-1, n))
        return grad_signs, grad_table, None, None, None, None


def signed_hadamard_recurrence(recurrence: SignedHadamard, latent: Tensor, z: Tensor, last_only: bool = False) -> Tensor:
    """States of ``H[:, t] = W H[:, t-1] + Z[:, t]``, ``H[:, 0] = Z[:, 0]``, for ``Z`` of shape (N, T, n).

    Returns all of them, ``(N, T, n)``, or ``H[:, -1]`` of shape ``(N, n)`` when ``last_only``.
    Differentiable in ``z`` and (straight through the sign) in ``latent``.
    """
    rows, steps, n = z.shape
    index = torch.arange(rows * steps, device=z.device).reshape(rows, steps)
    return _recurrence(recurrence, latent, z.reshape(rows * steps, n), index, last_only, unique_index=True)


def _recurrence(recurrence: SignedHadamard, latent: Tensor, table: Tensor, index: Tensor, last_only: bool,
                unique_index: bool) -> Tensor:
    signs = recurrence.signs(latent).to(table.dtype)
    return _SignedHadamardRecurrence.apply(signs, table.contiguous(), index.contiguous(), recurrence.block, last_only,
                                           unique_index)


def fused(recurrence: SignedHadamard, latent: Tensor, inputs: Tensor, U: Tensor, b: Tensor,
          readout: Readout, embedding: Tensor | None = None) -> Tensor:
    """Whole-sequence recurrence as one autograd node (see module docstring)."""
    if embedding is None:
        return signed_hadamard_recurrence(recurrence, latent, F.linear(inputs, U, b), readout == "last")
    # U e_t + b = (E[token] Uᵀ + b): project each distinct token of the batch once; the kernel gathers rows.
    tokens, where = torch.unique(inputs, return_inverse=True)
    table = F.linear(F.embedding(tokens, embedding, padding_idx=0), U, b)
    return _recurrence(recurrence, latent, table, where, readout == "last", unique_index=False)


def kernel(recurrence: SignedHadamard, latent: Tensor, inputs: Tensor, U: Tensor, b: Tensor,
           readout: Readout, embedding: Tensor | None = None) -> Tensor:
    """Many-to-one by the convolution kernel ``W^k [U | b]`` (see module docstring)."""
    if readout != "last" or embedding is not None:
        raise ValueError("the kernel engine computes only the last state of float inputs "
                         "(readout='last', no embedding); use engine 'fused' or 'auto'")
    batch, steps, features = inputs.shape
    projection = torch.cat([U, b[:, None]], dim=1).T  # (d+1, n): rows are the columns of [U | b]
    impulse = torch.cat([projection[:, None], projection.new_zeros(projection.shape[0], steps - 1, projection.shape[1])], 1)
    taps = signed_hadamard_recurrence(recurrence, latent, impulse).transpose(0, 1)  # taps[k] = (W^k [U | b])ᵀ
    ones = inputs.new_ones(batch, steps, 1)
    reversed_inputs = torch.cat([inputs, ones], dim=2).flip(1)  # row k holds [x_{T-1-k}; 1]
    return reversed_inputs.reshape(batch, -1) @ taps.reshape(-1, taps.shape[-1])


def choose_engine(readout: Readout, inputs: Tensor, embedding: Tensor | None) -> str:
    """The ``auto`` rule (module docstring)."""
    if readout == "last" and embedding is None and inputs.shape[-1] + 1 < inputs.shape[0]:
        return "kernel"
    return "fused"


Engine = Callable[..., Tensor]
ENGINES: dict[str, Engine] = {"loop": loop, "fused": fused, "kernel": kernel}
ENGINE_NAMES = ("auto", *ENGINES)


def recur(engine: str, recurrence: SignedHadamard, latent: Tensor, inputs: Tensor, U: Tensor,
          b: Tensor, readout: Readout, embedding: Tensor | None = None) -> Tensor:
    """Run the named engine (``"auto"`` applies :func:`choose_engine`).

    Args:
        engine: ``"auto"`` or a key of :data:`ENGINES`.
        recurrence, latent: the parametrization of ``W`` and its latent ``u`` of shape ``(n,)``.
        inputs: ``(B, T, d)`` floats, or ``(B, T)`` token ids when ``embedding`` is given.
        U: ``(n, d)`` input projection (already quantized); b: ``(n,)`` bias.
        readout: ``"last"`` → ``(B, n)``; ``"all"`` → ``(B, T, n)``.
        embedding: optional ``(vocab, d)`` table; row 0 is padding.
    """
    if engine == "auto":
        engine = choose_engine(readout, inputs, embedding)
    try:
        run = ENGINES[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {list(ENGINE_NAMES)}") from None
    return run(recurrence, latent, inputs, U, b, readout, embedding)
