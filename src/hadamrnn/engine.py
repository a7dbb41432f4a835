"""Whole-sequence linear recurrence ``h_t = W h_{t-1} + U x_t + b``, ``h_0 = 0``.

An engine takes the recurrent parametrization and latent, the raw inputs and the input projection,
and returns the states the read-out needs: ``h_T`` of shape ``(B, n)`` (``readout="last"``) or every
``h_t`` stacked as ``(B, T, n)`` (``readout="all"``). The states are pre-activations: the
non-linearity belongs to the read-out, not to the recurrence.

``loop`` is the plain step-by-step oracle: dense ``W``, inputs projected at each step, exactly what
the reference implementation does. Every other engine is tested against it.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .recurrent import SignedHadamard

__all__ = ["ENGINES", "recur", "loop"]

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
    for t in range(x.shape[1]):
        h = F.linear(h, W) + F.linear(x[:, t], U, b)
        if readout == "all":
            states.append(h)
    return torch.stack(states, dim=1) if readout == "all" else h


Engine = Callable[..., Tensor]
ENGINES: dict[str, Engine] = {"loop": loop}


def recur(engine: str, recurrence: SignedHadamard, latent: Tensor, inputs: Tensor, U: Tensor,
          b: Tensor, readout: Readout, embedding: Tensor | None = None) -> Tensor:
    """Run the named engine.

    Args:
        engine: a key of :data:`ENGINES`.
        recurrence, latent: the parametrization of ``W`` and its latent ``u`` of shape ``(n,)``.
        inputs: ``(B, T, d)`` floats, or ``(B, T)`` token ids when ``embedding`` is given.
        U: ``(n, d)`` input projection (already quantized); b: ``(n,)`` bias.
        readout: ``"last"`` → ``(B, n)``; ``"all"`` → ``(B, T, n)``.
        embedding: optional ``(vocab, d)`` table; row 0 is padding.
    """
    try:
        run = ENGINES[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {sorted(ENGINES)}") from None
    return run(recurrence, latent, inputs, U, b, readout, embedding)
