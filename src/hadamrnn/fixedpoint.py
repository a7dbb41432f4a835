"""Integer-aware training: the hidden state and the inputs in ``b``-bit fixed point, as deployed.

The forward pass is the integer step of :mod:`hadamrnn.deploy.integer`, value for value (computed
in float64, where every intermediate is an exact integer), on states in units of ``2^-fh`` and
inputs in units of ``2^-fx``, the terms of a step ``G = GUARD_BITS`` bits finer until one rounding::

    a = (I ⊗ H_m) h     r = round(R a / 2^S_R)     z = round(M_U (L_U x) / 2^S_U) + round(b 2^(fh+G))
    h = saturate_b(round((s ⊙ r + z) / 2^G))        y = V relu(h 2^-fh) + round(c / λ) λ

The backward pass is straight through: every rounding passes the gradient of the real value it
rounds (``a / sqrt(m)``, ``scale_U 2^(fh-fx) L_U x + b 2^fh`` in state units, ``c``), the saturation passes none
outside ``[-2^(b-1), 2^(b-1) - 1]`` (a saturated unit does not change with its input), and ``sign``
passes its identity gradient to the latent ``u`` as in float training.

The scales are powers of two, calibrated rather than learned: the gradient of a power-of-two
exponent is zero almost everywhere, and what the scale must do is known from the values and the
loss. ``HadamRNN.calibrate`` sets ``fx`` so that the largest ``|x|`` fits and ``fh`` so that the
largest ``|h_t|`` of the float recurrence fits, what post-training quantization would choose;
given a score (the training loop's loss on its first training samples, before the first step and
after every epoch), it also tries the finer state scales that saturate the rarest largest states
and keeps the best-scoring one (at 8 bits, two more fraction bits, on HAR-6 and pMNIST). Not from
the fixed-point states' own peaks: their magnitude before saturation depends on the scale, and
following it made the scale alternate every epoch (HAR-6, 8 bits: validation accuracy jumping
between 0.23 and 0.68). Export reads the scales from the model (``hadamrnn export --target c``),
so the integer model and the C reproduce the trained network.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import numpy as np

from . import native
from .deploy.integer import GUARD_BITS, fraction_bits, input_multiplier, rotation
from .hadamard import fwht

__all__ = ["FixedPointStates"]


def _straight_through(real: Tensor, exact: Tensor) -> Tensor:
    """``exact`` in the forward pass, the gradient of ``real`` in the backward pass."""
    return real + (exact - real).detach()


def _round_shift(value: Tensor, shift: int) -> Tensor:
    """``round(value / 2^shift)``, halves up, of integer-valued float64 tensors (``rshift_round``)."""
    return torch.floor((value + 2.0 ** (shift - 1)) / 2.0 ** shift) if shift > 0 else value


class _FusedFixedPoint(torch.autograd.Function):
    """The fixed-point recurrence as one compiled autograd node (``hadamrnn.native``): integer
    states kept as int16 with a saturation byte each, the adjoint recomputing ``B h[t-1]`` from them.

    The input terms are computed in the kernel from integer features ``x_int`` (N, T, d) and U's
    levels (``project``: no (N, T, n) array is built), or given as an integer-valued ``table``
    (N·T, n) read through ``index``. Straight through, ``z`` has the gradient of
    ``U x_int 2^(fh-fx) + b 2^fh`` (``U``, ``b`` real, with the factors ``input_scale``,
    ``bias_scale``), or of the table. Returns the states (N, T, n), or the last (N, n), as float64
    integers."""

    @staticmethod
    def forward(ctx, signs: Tensor, U: Tensor | None, b: Tensor | None, table: Tensor | None,  # type: ignore[override]
                x_int: Tensor | None, levels: Tensor | None, input_multiplier: int, input_shift: int,
                b_int: Tensor | None, index: Tensor | None, input_scale: float, bias_scale: float, block: int,
                rotation: int, shift: int, low: int, high: int, all_steps: bool) -> Tensor:
        project = table is None
        rows, steps = (x_int.shape[:2] if project else index.shape)
        n = signs.shape[0]
        states = np.empty((rows, steps, n), dtype=np.int16)
        saturated = np.empty((rows, steps, n), dtype=np.uint8)
        signs_int = signs.detach().numpy().astype(np.int64)
        if project:
            arrays = (x_int.numpy().astype(np.int64), levels.numpy().astype(np.int64), int(input_multiplier),
                      int(input_shift), b_int.numpy().astype(np.int64), np.zeros((1, 1), np.int64),
                      np.zeros((1, 1), np.int64))
        else:
            arrays = (np.zeros((1, 1, 1), np.int64), np.zeros((1, 1), np.int64), 1, 0, np.zeros(1, np.int64),
                      table.detach().numpy().astype(np.int64), index.numpy())
        native.fixed_point_forward(signs_int, project, *arrays, block, rotation, shift, GUARD_BITS, low, high, states,
                                   saturated)
        ctx.arrays = (signs_int, arrays[0], arrays[6], states, saturated)
        ctx.sizes = (table.shape[0] if not project else 0, levels.shape[1] if project else 0)
        ctx.project, ctx.scales = project, (input_scale, bias_scale)
        ctx.block, ctx.rotation, ctx.shift, ctx.all_steps = block, rotation, shift, all_steps
        return torch.from_numpy(states if all_steps else states[:, -1]).double()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        signs_int, inputs, index, states, saturated = ctx.arrays
        rows, steps, n = states.shape
        table_rows, features = ctx.sizes
        grad = grad.double().contiguous().numpy()
        chunks = max(1, min(rows, native.threads()))
        grad_signs = np.zeros((chunks, n))
        grad_levels = np.zeros((chunks, n, features) if ctx.project else (1, 1, 1))
        grad_bias = np.zeros((chunks, n) if ctx.project else (1, 1))
        grad_table = np.zeros((1, 1, 1) if ctx.project else (chunks, table_rows, n))
        native.fixed_point_backward(signs_int, ctx.project, inputs, index, states, saturated, ctx.all_steps,
                                    grad if ctx.all_steps else np.zeros((1, 1, 1)),
                                    np.zeros((1, 1)) if ctx.all_steps else grad, ctx.block, ctx.rotation, ctx.shift,
                                    GUARD_BITS, chunks, grad_signs, grad_levels, grad_bias, grad_table)
        input_scale, bias_scale = ctx.scales
        grad_U = torch.from_numpy(grad_levels.sum(0) * input_scale) if ctx.project else None
        grad_b = torch.from_numpy(grad_bias.sum(0) * bias_scale) if ctx.project else None
        grad_table_sum = None if ctx.project else torch.from_numpy(grad_table.sum(0) * 2.0 ** -GUARD_BITS)
        return (torch.from_numpy(grad_signs.sum(0)), grad_U, grad_b, grad_table_sum) + (None,) * 14


class FixedPointStates(nn.Module):
    """``b``-bit fixed-point states and inputs for a HadamRNN (``model.state_bits``).

    Buffers (saved in checkpoints): ``fx``, ``fh`` (the fraction bits of inputs and states) and
    ``calibrated``.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 4 <= bits <= 16:
            raise ValueError(f"state bits must be an int in [4, 16], got {bits!r}")
        self.bits = bits
        for name in ("fx", "fh"):
            self.register_buffer(name, torch.zeros((), dtype=torch.int64))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    @property
    def limits(self) -> tuple[int, int]:
        return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1

    def extra_repr(self) -> str:
        return f"bits={self.bits}, fx={int(self.fx)}, fh={int(self.fh)}"

    @torch.no_grad()
    def calibrate(self, input_peak: float, state_peak: float) -> None:
        """Set ``fx``, ``fh`` so that the given largest magnitudes (float units) fit in ``bits`` bits."""
        self.fx.fill_(fraction_bits(input_peak, self.bits))
        self.fh.fill_(fraction_bits(state_peak, self.bits))
        self.calibrated.fill_(True)

    def quantize_inputs(self, x: Tensor) -> Tensor:
        """Float features (or embedding rows, straight through) as integers ``floor(x 2^fx + 1/2)``, saturated."""
        low, high = self.limits
        real = x.double() * 2.0 ** int(self.fx)
        return _straight_through(real, torch.clamp(torch.floor(real + 0.5), low, high).detach())

    def run(self, signs: Tensor, block: int, x: Tensor, U_levels: Tensor, U_scale: Tensor, U: Tensor, b: Tensor,
            V_levels: Tensor, V_scale: Tensor, V: Tensor, c: Tensor, readout: str, engine: str = "auto") -> Tensor:
        """Logits ``(B, C)`` (or ``(B, T, C)`` for ``readout="all"``) of the fixed-point recurrence.

        ``x``: ``(B, T, d)`` model inputs (features, or embedding rows); ``signs`` ``(n,)`` ±1 (with
        the latent's gradient); ``U_levels``/``U_scale`` and ``V_scale``: the uniform quantizer's
        integer levels and step; ``U``, ``V``: the quantized weights (with their gradients). The
        read-out is taken in float64 from the levels, so that the logits are the integer logits
        times ``scale_V 2^-fh`` up to float64 rounding. ``engine="loop"`` runs the step-by-step
        oracle; otherwise CPU tensors take the compiled node."""
        fx, fh = int(self.fx), int(self.fh)
        low, high = self.limits
        x_int = self.quantize_inputs(x)  # (B, T, d), integer-valued
        guard = 2.0 ** GUARD_BITS
        u_multiplier, u_shift = input_multiplier(float(U_scale), fx, fh)
        rotation_multiplier, rotation_shift = rotation(block)
        signs = signs.double()
        b_exact = torch.floor(b.detach().double() * 2.0 ** fh * guard + 0.5)
        fused = engine != "loop" and x.device.type == "cpu"
        if fused and not x_int.requires_grad:  # float features: the kernel projects them itself
            states_int = _FusedFixedPoint.apply(
                signs, U.double(), b.double(), None, x_int.detach(), U_levels, u_multiplier, u_shift, b_exact, None,
                2.0 ** (fh - fx), 2.0 ** fh, block, rotation_multiplier, rotation_shift, low, high, readout == "all")
        else:
            sums = x_int.detach() @ U_levels.double().T  # L_U x, exact
            z = (_straight_through(x_int @ U.double().T * 2.0 ** (fh - fx) * guard,
                                   _round_shift(sums * u_multiplier, u_shift))
                 + _straight_through(b.double() * 2.0 ** fh * guard, b_exact))  # GUARD_BITS finer than a state
            if fused:
                rows, steps, n = z.shape
                index = torch.arange(rows * steps).reshape(rows, steps)
                states_int = _FusedFixedPoint.apply(
                    signs, None, None, z.reshape(rows * steps, n), None, None, 1, 0, None, index, 1.0, 1.0, block,
                    rotation_multiplier, rotation_shift, low, high, readout == "all")
            else:
                states_int = self._loop(signs, block, z, rotation_multiplier, rotation_shift, readout)
        logit_scale = float(V_scale) * 2.0 ** -fh
        c_q = _straight_through(c.double(), torch.floor(c.double().detach() / logit_scale + 0.5) * logit_scale)
        V_q = _straight_through(V.double(), V_levels.double() * float(V_scale))
        return (torch.relu(states_int) * 2.0 ** -fh) @ V_q.T + c_q

    def _loop(self, signs: Tensor, block: int, z: Tensor, rotation: int, shift: int, readout: str) -> Tensor:
        """The step-by-step oracle of the fused node: states (B, T, n) or (B, n), from ``z`` (B, T, n)
        ``GUARD_BITS`` finer than a state."""
        low, high = self.limits
        guard = 2.0 ** GUARD_BITS
        h = z.new_zeros(z.shape[0], z.shape[2])
        states = []
        for z_t in z.unbind(1):
            a = fwht(h, block, normalized=False)
            rotated = _straight_through(a * (guard / math.sqrt(block)), _round_shift(a.detach() * rotation, shift))
            update = signs * rotated + z_t
            h = torch.clamp(_straight_through(update / guard, _round_shift(update.detach(), GUARD_BITS)), low, high)
            if readout == "all":
                states.append(h)
        return torch.stack(states, dim=1) if readout == "all" else h
