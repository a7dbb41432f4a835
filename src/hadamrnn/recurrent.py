"""The recurrent weight as a parametrization: latent ``u`` ↦ ``W = diag(sign u) (I_{n/m} ⊗ H_m) / sqrt(m)``.

``m = n`` gives HadamRNN (binary ``W``, entries ``±1/sqrt(n)``); ``m < n`` gives Block-HadamRNN
(sparse ternary ``W``, a fraction ``m/n`` of entries non-zero). Either way ``W`` is exactly
orthogonal and is stored as ``n`` sign bits. The latent is trained through ``sign`` with a
straight-through estimator.

Use it as a ``torch.nn.utils.parametrize`` constraint on a plain square weight::

    rec = hadamard_orthogonal(nn.Linear(256, 256, bias=False), block=16)
    rec.weight                                   # dense W (256×256), for inspection
    p, u = parametrization(rec), latent(rec)     # SignedHadamard, the latent Parameter (256,)
    p.matvec(u, h)                               # W h by the fast transform, no multiplications

With ``signs="cyclic"`` the initial signs are chosen so that ``W`` repeats no eigenvalue
(:func:`cyclic_signs`): i.i.d. signs make ``W`` repeat the eigenvalues ±1 (at n = 512, 177 draws of 200),
and then the orbit ``W^k U`` of a one-dimensional input cannot span the whole state space
(:func:`distinct_eigenvalues`).

(The product is named ``matvec``, not ``apply``: ``nn.Module.apply`` already means "call fn on submodules".)
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .hadamard import block_hadamard, check_power_of_two, fwht, sylvester
from .quantize import Quantizer, sign as sign_quantizer

__all__ = ["SignedHadamard", "hadamard_orthogonal", "parametrization", "latent", "distinct_eigenvalues",
           "cyclic_signs", "SIGN_INITS", "CYCLIC_MAX_BLOCK"]

SIGN_INITS = ("random", "cyclic")

# Sign patterns :func:`cyclic_signs` tries per block before it keeps the best one (at n = 512 23 of 200
# i.i.d. draws were cyclic, so 128 tries all fail with probability ~1e-7).
CYCLIC_TRIES = 128

# Largest block whose eigenvalues cyclic_signs computes: the dense m × m eigenproblem costs ~0.7 s
# a draw at m = 2048 and ~4 s at 4096, where 128 draws found no cyclic W (measured, 2-core Xeon).
CYCLIC_MAX_BLOCK = 2048

# Eigenvalues of (W + Wᵀ)/2 closer than this are one eigenvalue of W; W's eigenvalues are exactly
# conditioned (W is normal), so float64 resolves them far below it.
EIGENVALUE_TOLERANCE = 1e-9


class SignedHadamard(nn.Module):
    """Parametrization ``u (n,) ↦ W (n, n) = diag(sign u) (I_{n/m} ⊗ H_m) / sqrt(m)``.

    Args:
        n: hidden size, a power of two.
        block: block size ``m`` (a power of two dividing ``n``); ``None`` for the full ``H_n``.
        sign: the quantizer producing ±1 from the latent (default: ``sign`` with ``sign(0) = +1``
            and an identity straight-through gradient).
    """

    def __init__(self, n: int, block: int | None = None, sign: Quantizer = sign_quantizer) -> None:
        super().__init__()
        check_power_of_two(n, "hidden size n")
        self.n = n
        self.block = n if block is None else block
        self.sign = sign
        # Unnormalised (±1/0, exact in every dtype; int8 so .double() leaves it alone) and derived
        # from (n, block) alone, so not saved with the weights.
        self.register_buffer("basis", block_hadamard(n, block, dtype=torch.int8), persistent=False)
        # Signs at the last reference point (see set_reference / flips); saved, so a resumed run counts on.
        self.register_buffer("reference", torch.ones(n, dtype=torch.int8))

    @property
    def scale(self) -> float:
        """``1 / sqrt(m)``: the magnitude of every non-zero entry of ``W``."""
        return 1.0 / math.sqrt(self.block)

    def signs(self, latent: Tensor) -> Tensor:
        """±1 vector ``sign(u)`` of shape ``(n,)``; gradient straight through to ``u``."""
        return self.sign(latent)

    def forward(self, latent: Tensor) -> Tensor:
        """Dense ``W`` of shape ``(n, n)`` in the latent's dtype."""
        return self.signs(latent)[:, None] * self.basis.to(latent.dtype) * self.scale

    def right_inverse(self, weight: Tensor) -> Tensor:
        """A latent reproducing ``weight``, which must already be of the signed-Hadamard form."""
        if weight.shape != (self.n, self.n):
            raise ValueError(f"expected a ({self.n}, {self.n}) weight, got {tuple(weight.shape)}")
        # Column 0 of every H_m block is all ones, so the row signs sit on the block's first column.
        first_column = torch.arange(self.n, device=weight.device) // self.block * self.block
        latent = torch.where(weight[torch.arange(self.n), first_column] >= 0, 1.0, -1.0).to(weight.dtype)
        if not torch.allclose(self.forward(latent), weight, atol=1e-6):
            raise ValueError("weight is not of the form diag(±1)(I ⊗ H_m)/sqrt(m); it cannot be "
                             "represented by this parametrization")
        return latent

    def matvec(self, latent: Tensor, h: Tensor) -> Tensor:
        """``W h`` over the last dimension of ``h`` (shape ``(..., n)``) by the fast transform."""
        return self.signs(latent).to(h.dtype) * fwht(h, self.block)

    def matvec_transposed(self, latent: Tensor, g: Tensor) -> Tensor:
        """``Wᵀ g = (I ⊗ H_m) diag(s) g / sqrt(m)`` over the last dimension of ``g``."""
        return fwht(self.signs(latent).to(g.dtype) * g, self.block)

    @torch.no_grad()
    def set_reference(self, latent: Tensor) -> None:
        """Remember the current signs; :meth:`flips` counts changes from here."""
        self.reference.copy_(self.sign.quantize(latent).to(torch.int8))

    @torch.no_grad()
    def flips(self, latent: Tensor) -> int:
        """Number of entries of ``sign(u)`` that differ from the reference point."""
        return int((self.sign.quantize(latent).to(torch.int8) != self.reference).sum())

    def extra_repr(self) -> str:
        return f"n={self.n}, block={self.block}"


def init_bound(n: int) -> float:
    """Half-width ``sqrt(6 / (n + 1))`` of the uniform latent initialisation."""
    return math.sqrt(6.0 / (n + 1))


def _cosines(signs: np.ndarray, hadamard: np.ndarray) -> np.ndarray:
    """Sorted ``cos θ`` of the eigenvalues ``e^{±iθ}`` of ``W = diag(signs) H`` (``H`` orthonormal,
    symmetric): the eigenvalues of the symmetric ``(W + Wᵀ)/2``, a conjugate pair giving one twice."""
    w = signs[:, None] * hadamard
    return np.linalg.eigvalsh((w + w.T) / 2)


def _count_distinct(cosines: np.ndarray) -> int:
    """Distinct eigenvalues of an orthogonal ``W`` from the sorted cosines of its eigenvalues: each
    distinct cosine inside (-1, 1) is a pair ``e^{±iθ}``, one at ±1 is the real eigenvalue ±1."""
    if cosines.size == 0:
        return 0
    representatives = cosines[np.concatenate([[True], np.diff(cosines) > EIGENVALUE_TOLERANCE])]
    return int(np.where(np.abs(representatives) > 1 - EIGENVALUE_TOLERANCE, 1, 2).sum())


def _block_hadamard_numpy(block: int) -> np.ndarray:
    return sylvester(block, torch.float64).numpy() / math.sqrt(block)


def distinct_eigenvalues(signs: Tensor, block: int | None = None) -> int:
    """Number of distinct eigenvalues of ``W = diag(signs)(I ⊗ H_m)/sqrt(m)``; ``signs`` ±1, shape ``(n,)``.

    ``W`` is normal, so this is the dimension of the space that the orbit ``{W^k v}`` of a generic
    vector ``v`` spans: a state driven by one input column ``U`` (``d = 1``: a pixel, a scalar
    series) lives in that many of the ``n`` dimensions (``d`` columns: at most ``d`` per repeated
    eigenvalue). ``n`` means ``W`` is cyclic; blocks of size ``m`` share eigenvalues, so small ones lose
    most (``m = 4``, n = 512: 12, whatever the signs tried).
    """
    values = signs.detach().double().cpu().numpy()
    m = values.size if block is None else block
    hadamard = _block_hadamard_numpy(m)
    return _count_distinct(np.sort(np.concatenate([_cosines(values[j:j + m], hadamard)
                                                   for j in range(0, values.size, m)])))


def cyclic_signs(signs: Tensor, block: int | None = None, tries: int = CYCLIC_TRIES) -> Tensor:
    """±1 signs of shape ``(n,)`` for which ``W`` has as many distinct eigenvalues as found, from ``signs``.

    Block by block, the candidates are ``signs`` itself, then ``signs ⊙ r`` for Rademacher vectors
    ``r`` of a generator with a fixed seed (so the result is as random as ``signs`` and a function of
    it); a block keeps the first candidate whose eigenvalues are all distinct and new to the blocks
    before it, else the one that adds the most. With ``m = n`` that makes ``W`` cyclic (its
    eigenvalues all distinct, :func:`distinct_eigenvalues` = n) unless ``tries`` draws all fail.
    """
    values = signs.detach().double().cpu().numpy()
    n = values.size
    m = n if block is None else block
    if m > CYCLIC_MAX_BLOCK:
        raise ValueError(f"cyclic signs need the eigenvalues of every {m} x {m} block, too slow above "
                         f"{CYCLIC_MAX_BLOCK}; use a block size <= {CYCLIC_MAX_BLOCK} or random signs")
    hadamard = _block_hadamard_numpy(m)
    generator = torch.Generator().manual_seed(0)
    chosen, kept = values.copy(), np.empty(0)
    for start in range(0, n, m):
        base, so_far = values[start:start + m], _count_distinct(kept)
        best_gain, best = -1, None
        for attempt in range(tries):
            flip = np.ones(m) if attempt == 0 else \
                torch.randint(0, 2, (m,), generator=generator).double().mul_(2).sub_(1).numpy()
            candidate = base * flip
            cosines = np.sort(np.concatenate([kept, _cosines(candidate, hadamard)]))
            gain = _count_distinct(cosines) - so_far
            if gain > best_gain:
                best_gain, best = gain, (candidate, cosines)
            if gain == m:
                break
        chosen[start:start + m], kept = best
    return torch.from_numpy(chosen).to(signs.dtype)


def hadamard_orthogonal(module: nn.Module, name: str = "weight", block: int | None = None,
                        generator: torch.Generator | None = None,
                        signs: Literal["random", "cyclic"] = "random") -> nn.Module:
    """Constrain ``module.<name>`` (square, ``n × n``) to a signed (block) Hadamard matrix.

    The stored parameter becomes the latent ``u`` of shape ``(n,)``, drawn uniformly in
    ``±sqrt(6/(n+1))`` (from ``generator`` if given, else torch's global RNG). ``signs="cyclic"``
    then replaces its signs by :func:`cyclic_signs` of them (magnitudes kept, no further draw from
    that RNG, so everything else a seed initialises stays the same). Returns ``module``.
    """
    if signs not in SIGN_INITS:
        raise ValueError(f"signs must be one of {list(SIGN_INITS)}, got {signs!r}")
    weight = getattr(module, name)
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(weight.shape)}")
    n = weight.shape[0]
    param = SignedHadamard(n, block).to(device=weight.device, dtype=weight.dtype)
    bound = init_bound(n)
    u = torch.empty(n, dtype=weight.dtype, device=weight.device).uniform_(-bound, bound, generator=generator)
    if signs == "cyclic":
        # clamp: a latent drawn as exactly 0 must still carry the sign chosen for it.
        u = u.abs().clamp(min=torch.finfo(u.dtype).tiny) * cyclic_signs(param.sign.quantize(u), block)
    with torch.no_grad():
        weight.copy_(param(u))
    parametrize.register_parametrization(module, name, param, unsafe=True)
    with torch.no_grad():
        module.parametrizations[name].original.copy_(u)
    param.set_reference(u)
    return module


def parametrization(module: nn.Module, name: str = "weight") -> SignedHadamard:
    """The :class:`SignedHadamard` registered on ``module.<name>``."""
    try:
        found = module.parametrizations[name][0]
    except (AttributeError, KeyError) as error:
        raise ValueError(f"module has no parametrization on {name!r}; call hadamard_orthogonal first") from error
    if not isinstance(found, SignedHadamard):
        raise ValueError(f"the parametrization on {name!r} is {type(found).__name__}, not SignedHadamard")
    return found


def latent(module: nn.Module, name: str = "weight") -> nn.Parameter:
    """The latent parameter ``u`` (shape ``(n,)``) behind ``module.<name>``."""
    parametrization(module, name)
    return module.parametrizations[name].original
