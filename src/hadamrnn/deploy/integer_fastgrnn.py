"""Integer-only FastGRNN (NumPy only): fixed-point inputs and states, piecewise-linear σ and tanh.

A FastGRNN trained with ``model.activations: hard`` — σ(x) = clip((x + 1)/2, 0, 1) and
tanh(x) = clip(x, −1, 1), EdgeML's ``quantSigm``/``quantTanh``, which integers compute exactly — and
``p``-bit ``W``, ``U`` (each low-rank factor its own scale) and ``V``. Inputs are ``b``-bit at
``2^-fx`` and states ``b``-bit at ``2^-fh``, calibrated on data as for HadamRNN; pre-activations are
at ``2^-Q`` (``Q = gate_bits``, the most up to 15 with which every intermediate fits ``int32_t``,
where some ``Q`` lets them). One step, in integers only::

    s_W = L_W x        (low rank: L_W1 (L_W2 x); likewise s_U = L_U h)     exact sums
    p   = round(M_W round(s_W / 2^K_W) / 2^S_W) + (the same for s_U)        W x + U h at 2^-Q
    c   = clip(p + B_h, −2^Q, 2^Q)                                         tanh, at 2^-Q
    z   = clip(p + B_z + 2^Q, 0, 2^(Q+1))                                  σ, at 2^-(Q+1): exact
    g   = round(Z (2^(Q+1) − z) / 2^(Q+1)) + N                             ζ (1 − σ) + ν, at 2^-Q
    h   = saturate_b(round((g c · 2^(fh+1−Q) + z h) / 2^(Q+1)))             at 2^-fh
    y   = L_V h + c_int                                                    logits in units of scale_V 2^-fh

``2^K M / 2^S`` is the scale ``scale_W 2^(Q−fx)`` (``scale_U 2^(Q−fh)``): a multiplier of at most 15
bits, fewer (down to 11) and a pre-shift ``K`` that drops only bits below one unit of ``p``, where
that keeps the product in ``int32_t``; ``Z``, ``N``, ``B_z``, ``B_h``
are ``ζ``, ``ν``, ``b_z``, ``b_h`` rounded at ``2^-Q``. A factor ``2^e`` with ``e < 0`` is a
rounding shift. The product ``g c`` and the memory ``z h`` are summed before the new state's one
rounding. Every intermediate has a proven bound (:meth:`IntegerFastGRNN.bounds`), and the C of
``templates/fastgrnn_model.c`` performs the same operations in the types those bounds allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .integer import Bound, IntegerRNN, MULTIPLIER_BITS, fraction_bits, multiplier, readout_bound, round_bound, \
    rshift_round

__all__ = ["IntegerFastGRNN", "quantize_fastgrnn", "GATE_BITS"]

GATE_BITS = 15  # the most fraction bits of pre-activations (tried downwards until everything fits int32_t)
FEWEST_MULTIPLIER_BITS = 11  # a scale's relative error stays below 2^-11 where it is narrowed to fit int32_t


def _half(shift: int) -> int:
    """The rounding constant of a right shift by ``shift``."""
    return 1 << (shift - 1) if shift > 0 else 0


def _scale(v: np.ndarray, exponent: int) -> np.ndarray:
    """``v · 2^exponent``: a left shift, or a rounding right shift (halves up)."""
    return v << exponent if exponent >= 0 else rshift_round(v, -exponent)


def _chain(v: np.ndarray, factors: tuple[np.ndarray, ...]) -> np.ndarray:
    """``L_1 (L_2 (… v))``: the factors in the order they apply (``(out, in)`` each), exact."""
    for levels in factors:
        v = v @ levels.T
    return v


@dataclass(kw_only=True)
class IntegerFastGRNN(IntegerRNN):
    """The integer FastGRNN (the module's docstring gives its step)."""

    family: ClassVar[str] = "fastgrnn"
    gate_bits: int  # Q
    w_factors: tuple[np.ndarray, ...]  # levels in the order they apply to x: (n, d), or (r, d) then (n, r)
    w_pre_shift: int
    w_multiplier: int
    w_shift: int
    u_factors: tuple[np.ndarray, ...]  # likewise on h: (n, n), or (r, n) then (n, r)
    u_pre_shift: int
    u_multiplier: int
    u_shift: int
    b_gate: np.ndarray  # (n,) b_z at 2^-Q
    b_update: np.ndarray  # (n,) b_h at 2^-Q
    zeta: int  # ζ at 2^-Q
    nu: int  # ν at 2^-Q

    def __post_init__(self) -> None:
        """A ``ValueError`` unless the arrays fit together (a file may have been altered)."""
        n = self.v_levels.shape[1] if np.ndim(self.v_levels) == 2 else -1
        chains_fit = all(
            1 <= len(factors) <= 2 and all(np.ndim(f) == 2 for f in factors) and factors[-1].shape[0] == n
            and (len(factors) == 1 or factors[1].shape[1] == factors[0].shape[0])
            for factors in (self.w_factors, self.u_factors))
        if not (chains_fit and self.u_factors[0].shape[1] == n
                and all(np.shape(v) == (n,) for v in (self.b_gate, self.b_update))
                and np.shape(self.c) == (self.v_levels.shape[0],)
                and (self.embedding is None or np.ndim(self.embedding) == 2
                     and self.embedding.shape[1] == self.w_factors[0].shape[1])):
            raise ValueError("the FastGRNN arrays do not fit together (W, U and V factors, biases, embedding)")

    @property
    def input_size(self) -> int:
        return self.w_factors[0].shape[1]

    @property
    def hidden_size(self) -> int:
        return self.u_factors[-1].shape[0]

    def _factor_bounds(self, factors: tuple[np.ndarray, ...], first: list[int]) -> list[int]:
        """Bounds on every partial sum of each factor's outputs (one per factor), given a bound per
        output of the first factor (``first``)."""
        bounds, previous = [max(first, default=0)], np.array(first, dtype=object)
        for levels in factors[1:]:
            previous = np.abs(levels).astype(object) @ previous
            bounds.append(int(previous.max(initial=0)))
        return bounds

    def bounds(self, bits: int | None = None) -> list[Bound]:
        """Proven magnitude bounds of every intermediate of a step and of the read-out, for states and
        inputs of ``bits`` bits (default: the model's own), from the actual levels, biases, ζ and ν."""
        bits = self.bits if bits is None else bits
        state = 1 << (bits - 1)  # the largest |h|, and |x|, after saturation
        one, q = 1 << self.gate_bits, self.gate_bits
        first_w = np.abs(self.w_factors[0]).astype(object)
        if self.embedding is not None:  # the largest sums over the embedding rows, which bound every partial sum
            scale = 1 << max(bits - self.bits, 0)
            inputs = [int(v) * scale for v in (np.abs(self.embedding).astype(object) @ first_w.T).max(axis=0)]
        else:
            inputs = [int(v) * state for v in first_w.sum(axis=1)]
        w_sums = self._factor_bounds(self.w_factors, inputs)
        u_sums = self._factor_bounds(self.u_factors, [int(v) * state for v in np.abs(self.u_factors[0]).sum(axis=1)])
        w_product = round_bound(w_sums[-1], self.w_pre_shift) * self.w_multiplier
        u_product = round_bound(u_sums[-1], self.u_pre_shift) * self.u_multiplier
        pre = round_bound(w_product, self.w_shift) + round_bound(u_product, self.u_shift)
        arguments = pre + max(int(np.abs(self.b_update).max(initial=0)), int(np.abs(self.b_gate).max(initial=0)) + one)
        gain = ((self.zeta * 2 * one + _half(q + 1)) >> (q + 1)) + self.nu  # g ≤ Z + N: z ≥ 0
        exponent = self.fh + 1 - q
        candidate = gain * one  # |g c|, c in [-2^Q, 2^Q]
        mix = (candidate << exponent if exponent >= 0 else round_bound(candidate, -exponent)) + 2 * one * state
        mix = max(mix + _half(q + 1), candidate + _half(-exponent))  # g c is formed in this type before its shift
        rows = []
        for name, sums in (("w", w_sums), ("u", u_sums)):
            what = "W x" if name == "w" else "U h"
            if len(sums) == 2:
                rows.append(Bound(f"{name}_inner", f"{what}: the low-rank factor's sums", sums[0]))
            rows.append(Bound(f"{name}_sum", f"{what}: the level sums", sums[-1]))
        rows += [Bound("w_product", "M_W round(s_W / 2^K_W) + 2^(S_W-1)", w_product + _half(self.w_shift)),
                 Bound("u_product", "M_U round(s_U / 2^K_U) + 2^(S_U-1)", u_product + _half(self.u_shift)),
                 Bound("pre", "p plus B_h, or plus B_z + 2^Q (the gate and candidate arguments)", arguments),
                 Bound("gain", "Z (2^(Q+1) - z) + 2^Q", self.zeta * 2 * one + _half(q + 1)),
                 Bound("mix", "g c 2^(fh+1-Q) + z h + 2^Q before the rounding shift", mix),
                 Bound("logit", "logits L_V h + c", readout_bound(self.v_levels, self.c, -state, state - 1))]
        return rows

    def states(self, x_int: np.ndarray) -> np.ndarray:
        """The states ``(B, n)`` at the last step (``(B, T, n)`` for read-out "all"), one step at a time."""
        x = self.embedding[x_int] if self.embedding is not None else np.asarray(x_int, dtype=np.int64)
        low, high = self.limits
        q = self.gate_bits
        one = 1 << q
        h = np.zeros((x.shape[0], self.hidden_size), dtype=np.int64)
        outputs = []
        for t in range(x.shape[1]):
            w = rshift_round(_chain(x[:, t], self.w_factors), self.w_pre_shift) * self.w_multiplier
            u = rshift_round(_chain(h, self.u_factors), self.u_pre_shift) * self.u_multiplier
            pre = rshift_round(w, self.w_shift) + rshift_round(u, self.u_shift)
            candidate = np.clip(pre + self.b_update, -one, one)
            gate = np.clip(pre + self.b_gate + one, 0, 2 * one)
            gain = rshift_round(self.zeta * (2 * one - gate), q + 1) + self.nu
            h = np.clip(rshift_round(_scale(gain * candidate, self.fh + 1 - q) + gate * h, q + 1), low, high)
            if self.readout == "all":
                outputs.append(h)
        return np.stack(outputs, axis=1) if self.readout == "all" else h

    def logits_int(self, x_int: np.ndarray) -> np.ndarray:
        return self.states(x_int) @ self.v_levels.T + self.c


def _fitting_scale(real: float, sum_bound: int) -> tuple[int, int, int]:
    """``(K, M, S)`` with ``round(round(s / 2^K) M / 2^S) ≈ s · real`` for sums ``|s| ≤ sum_bound``, the
    product in ``int32_t`` where possible: the most multiplier bits (15 down to 11) and then the smallest
    pre-shift ``K`` that fit, a pre-shift dropping only what is below one unit of the result
    (``2^K real ≤ 1``: with the final rounding, at most one unit of error, where more fraction bits
    ``Q`` gain more than that loses); ``(0, M, S)`` with 15 bits when nothing fits (the product takes ``int64_t``)."""
    most_shift = max(0, math.floor(-math.log2(real))) if real > 0 else 0
    for bits in range(MULTIPLIER_BITS, FEWEST_MULTIPLIER_BITS - 1, -1):
        for pre_shift in range(most_shift + 1):
            m, shift = multiplier(real * 2.0 ** pre_shift, bits)
            if (round_bound(sum_bound, pre_shift) * m + _half(shift)).bit_length() + 1 <= 32:
                return pre_shift, m, shift
    return (0, *multiplier(real))


def quantize_fastgrnn(model, calibration: np.ndarray, bits: int | None = None, transform=None,
                      classes: tuple[str, ...] | None = None) -> IntegerFastGRNN:
    """The integer version of a trained :class:`hadamrnn.models.fastgrnn.FastGRNN` (hard activations,
    quantized ``W``, ``U`` and ``V``), with ``bits``-bit inputs and states calibrated on
    ``calibration`` (inputs like the training data, ``(B, T, d)`` floats or ``(B, T)`` token ids):
    ``fx`` so that the largest input fits, ``fh`` so that the largest state of any step does.
    ``bits=None``: the widest states, up to 16 bits, with which every intermediate fits ``int32_t``
    (16 when none does)."""
    import copy

    import torch

    from ..quantize import UniformQuantizer

    if model.activations != "hard":
        raise ValueError("integer FastGRNN computes the piecewise-linear σ and tanh; this model was trained with "
                         "the smooth ones: train it with model.activations: hard")
    layers = [*model.W.factors, *model.U.factors, model.output]
    if not all(isinstance(layer.quantizer, UniformQuantizer) for layer in layers):
        raise ValueError("integer FastGRNN needs p-bit W and U (model.bits) and a p-bit read-out (model.output_bits)")
    if bits is not None and not 4 <= bits <= 16:
        raise ValueError(f"state bits must be in [4, 16], got {bits}")

    def levels(layer) -> tuple[np.ndarray, float]:
        values, step = layer.quantizer.levels(layer.weight)
        return values.detach().cpu().numpy().astype(np.int64), float(step)

    def factors(matrix) -> tuple[tuple[np.ndarray, ...], float]:
        pairs = [levels(layer) for layer in matrix.factors]
        return tuple(v for v, _ in pairs), float(np.prod([s for _, s in pairs]))

    with torch.no_grad():
        cpu = copy.deepcopy(model).to("cpu").double()  # the levels come from the model as trained
        x = torch.from_numpy(np.asarray(calibration))
        inputs = cpu.embedding(x) if cpu.embedding is not None else x.double()
        state_peak = float(cpu.states(inputs, last_only=False).abs().max())
        embedding = cpu.embedding.weight.numpy() if cpu.embedding is not None else None
        input_peak = float(np.abs(embedding if embedding is not None else inputs.numpy()).max())
        zeta, nu = float(torch.sigmoid(cpu.zeta_raw)), float(torch.sigmoid(cpu.nu_raw))
        b_z, b_h = cpu.bias_gate.numpy().astype(np.float64), cpu.bias_update.numpy().astype(np.float64)
        c_float = cpu.output.bias.numpy().astype(np.float64)
    w_factors, w_scale = factors(model.W)
    u_factors, u_scale = factors(model.U)
    v_levels, v_scale = levels(model.output)
    rounded = lambda v, q: np.floor(np.asarray(v) * 2.0 ** q + 0.5).astype(np.int64)  # noqa: E731

    def at(bits: int) -> IntegerFastGRNN:
        """The model at ``bits``-bit states, with the most gate bits ``Q`` among those that need the fewest
        ``int64_t`` intermediates."""
        fx, fh = fraction_bits(input_peak, bits), fraction_bits(state_peak, bits)
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        embedding_int = None
        if embedding is not None:  # as the inputs of a feature model: round(e 2^fx), saturated
            embedding_int = np.clip(np.floor(embedding * 2.0 ** fx + 0.5), low, high).astype(np.int64)
        logit_scale = v_scale * 2.0 ** -fh

        def build(q: int, w: tuple[int, int, int] = (0, 1, 0), u: tuple[int, int, int] = (0, 1, 0)) -> IntegerFastGRNN:
            return IntegerFastGRNN(
                bits=bits, fx=fx, fh=fh, readout=model.task.readout, v_levels=v_levels,
                c=np.floor(c_float / logit_scale + 0.5).astype(np.int64), logit_scale=logit_scale,
                embedding=embedding_int, transform=transform, classes=classes, gate_bits=q, w_factors=w_factors,
                w_pre_shift=w[0], w_multiplier=w[1], w_shift=w[2], u_factors=u_factors, u_pre_shift=u[0],
                u_multiplier=u[1], u_shift=u[2], b_gate=rounded(b_z, q), b_update=rounded(b_h, q),
                zeta=int(rounded(zeta, q)), nu=int(rounded(nu, q)))

        candidates = []
        for q in range(GATE_BITS, 7, -1):
            sums = {bound.name: bound.max_abs for bound in build(q).bounds()}  # they do not depend on the scales
            integer = build(q, _fitting_scale(w_scale * 2.0 ** (q - fx), sums["w_sum"]),
                            _fitting_scale(u_scale * 2.0 ** (q - fh), sums["u_sum"]))
            wide = sum(bound.bits > 32 for bound in integer.check_bounds())
            candidates.append((wide, -q, integer))
            if wide == 0:
                break
        return min(candidates, key=lambda item: item[:2])[2]

    if bits is not None:
        return at(bits)
    for width in range(16, 3, -1):
        integer = at(width)
        if all(bound.bits <= 32 for bound in integer.bounds()):
            return integer
    return at(16)
