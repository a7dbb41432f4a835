"""A linear layer whose weight passes through a quantizer (used for ``U`` and ``V``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .quantize import Quantizer, get_quantizer

__all__ = ["QuantizedLinear"]


class QuantizedLinear(nn.Linear):
    """``y = Q(weight) x + bias``; the bias stays full precision.

    Args:
        in_features, out_features, bias: as for ``nn.Linear``.
        quantizer: a :class:`~hadamrnn.quantize.Quantizer`, or a bit width (``None`` = full precision).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 quantizer: Quantizer | int | None = 4) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.quantizer = get_quantizer(quantizer)

    def quantized_weight(self) -> Tensor:
        """The weight the forward pass uses, shape ``(out_features, in_features)``."""
        return self.quantizer(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, quantizer={self.quantizer!r}"
