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

(The product is named ``matvec``, not ``apply``: ``nn.Module.apply`` already means "call fn on submodules".)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .hadamard import block_hadamard, check_power_of_two, fwht
from .quantize import Quantizer, sign as sign_quantizer

__all__ = ["SignedHadamard", "hadamard_orthogonal", "parametrization", "latent"]


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


def hadamard_orthogonal(module: nn.Module, name: str = "weight", block: int | None = None,
                        generator: torch.Generator | None = None) -> nn.Module:
    """Constrain ``module.<name>`` (square, ``n × n``) to a signed (block) Hadamard matrix.

    The stored parameter becomes the latent ``u`` of shape ``(n,)``, drawn uniformly in
    ``±sqrt(6/(n+1))`` (from ``generator`` if given, else torch's global RNG). Returns ``module``.
    """
    weight = getattr(module, name)
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(weight.shape)}")
    n = weight.shape[0]
    param = SignedHadamard(n, block).to(device=weight.device, dtype=weight.dtype)
    bound = init_bound(n)
    u = torch.empty(n, dtype=weight.dtype, device=weight.device).uniform_(-bound, bound, generator=generator)
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
