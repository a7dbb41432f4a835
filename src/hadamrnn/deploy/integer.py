"""Integer-only inference: post-training quantization of inputs and hidden states (NumPy only).

Inputs (features, or embedding rows for token models) and hidden states become ``b``-bit signed
fixed-point numbers with power-of-two scales ``2^-fx`` and ``2^-fh``, calibrated on data so that
the largest magnitude seen fits. One step, in integers only, with ``G = GUARD_BITS``::

    a   = (I ⊗ H_m) h                                   exact sums, |a| ≤ m · 2^(b-1)
    r   = round(R a / 2^S_R)                            R / 2^S_R = 2^G / sqrt(m) (46341 / 2^16 for odd log2 m)
    u   = round(M_U (L_U x) / 2^S_U)                    L_U: p-bit levels of U; M_U / 2^S_U ≈ scale_U · 2^(fh-fx+G)
    h   = saturate_b(round((s ⊙ r + u + b_int) / 2^G))   b_int = round(b · 2^(fh+G))
    y   = L_V relu(h) + c_int                           logits in units of scale_V · 2^-fh

``round(v / 2^s)`` is ``(v + 2^(s-1)) >> s`` with an arithmetic shift (rounds halves up).

The terms of a step are summed ``G`` bits finer than a state's unit and rounded once. Rounded
on their own, as an earlier version did, the bias's rounding error is the same at every step,
and an orthogonal recurrence adds it up instead of forgetting it (docs/deployment.md, "One
rounding per step": on pMNIST it made up most of the states' error).

Every intermediate has a bound proven from the model's own levels, biases, block size and bits
(:meth:`IntegerModel.bounds`); the generated C (``hadamrnn.deploy.codegen``) stores each in the
narrowest of ``int32_t`` / ``int64_t`` that holds its bound, states in ``int16_t`` up to 16 bits,
performs the same operations and matches this model bit for bit. A bound beyond 63 bits is an
error that names the state bits that would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from ..preprocess import InputTransform
from .runtime import RuntimeModel, fwht

__all__ = ["IntegerRNN", "IntegerModel", "Bound", "quantize_model", "GUARD_BITS", "rotation", "input_multiplier",
           "rshift_round", "multiplier", "fraction_bits", "round_bound", "readout_bound"]

SQRT2_BITS = 16
INV_SQRT2 = round(2 ** SQRT2_BITS / math.sqrt(2))  # 46341
MULTIPLIER_BITS = 15
GUARD_BITS = 8  # fraction bits below a state's unit that a step keeps until its one rounding


def rotation(block: int, guard_bits: int = GUARD_BITS) -> tuple[int, int]:
    """``(R, S)`` with ``R / 2^S = 2^guard_bits / sqrt(block)``: exact for even ``log2 block``, else
    through ``1/sqrt(2) ≈ 46341 / 2^16``. ``S ≥ 0``: a negative shift is folded into ``R``."""
    log_m = int(math.log2(block))
    multiplier, shift = (INV_SQRT2, SQRT2_BITS + log_m // 2) if log_m % 2 else (1, log_m // 2)
    shift -= guard_bits
    return (multiplier << -shift, 0) if shift < 0 else (multiplier, shift)


def rshift_round(v: np.ndarray, shift: int) -> np.ndarray:
    """``round(v / 2^shift)``, halves rounded up, on int64 (an arithmetic shift)."""
    v = np.asarray(v, dtype=np.int64)
    return (v + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift) if shift > 0 else v


def round_bound(value: int, shift: int) -> int:
    """A bound on ``|round(v / 2^shift)|`` given ``|v| ≤ value`` (rounding is monotonic)."""
    return (value + (1 << (shift - 1))) >> shift if shift > 0 else value


def readout_bound(v_levels: np.ndarray, c: np.ndarray, low: int, high: int) -> int:
    """A bound on every partial sum of ``c_i + Σ_j V_ij h_j`` for ``h_j`` in ``[low, high]`` (``low ≤ 0 ≤ high``):
    each term lies in an interval holding 0, so each partial sum lies between ``c_i`` plus the terms' lows
    and ``c_i`` plus their highs."""
    bound = 0
    for row, bias in zip(np.asarray(v_levels).astype(object), np.asarray(c).astype(object)):
        positive, negative = int(np.where(row > 0, row, 0).sum()), int(-np.where(row < 0, row, 0).sum())
        bound = max(bound, abs(bias + positive * high - negative * low), abs(bias + positive * low - negative * high))
    return bound


def multiplier(real: float, bits: int = MULTIPLIER_BITS) -> tuple[int, int]:
    """``(M, S)`` with ``M / 2^S ≈ real`` and ``M < 2^bits`` where possible (``S ≥ 0``)."""
    if real <= 0:
        return 0, 0
    shift = max(0, bits - 1 - math.floor(math.log2(real)))
    return int(round(real * 2 ** shift)), shift


def input_multiplier(u_scale: float, fx: int, fh: int) -> tuple[int, int]:
    """``(M_U, S_U)``: an input sum ``L_U x`` (inputs at ``2^-fx``) times ``M_U / 2^S_U`` is ``U x`` in
    units of ``2^-(fh+GUARD_BITS)``, where a step sums its terms (training and export share it)."""
    return multiplier(u_scale * 2.0 ** (fh - fx + GUARD_BITS))


def fraction_bits(max_abs: float, bits: int) -> int:
    """Largest ``f`` with ``max_abs · 2^f ≤ 2^(bits-1) - 1``."""
    if max_abs <= 0:
        return bits - 1
    return math.floor(math.log2((2 ** (bits - 1) - 1) / max_abs))


@dataclass(frozen=True)
class Bound:
    """``|value| ≤ max_abs`` for one intermediate of the integer model, for every input and state."""

    name: str  # the C type is hrnn_<name>_t
    what: str
    max_abs: int

    @property
    def bits(self) -> int:
        """Bits of a two's-complement integer that holds ``±max_abs``."""
        return self.max_abs.bit_length() + 1

    @property
    def ctype(self) -> str:
        return "int32_t" if self.bits <= 32 else "int64_t"


@dataclass(kw_only=True)
class IntegerRNN:
    """What every integer model shares: ``bits``-bit inputs at ``2^-fx`` and states at ``2^-fh``, an
    integer read-out through ``V``'s levels in units of ``logit_scale`` (HadamRNN: ``L_V relu(h) + c``,
    FastGRNN: ``L_V h + c``), and what ``predict`` needs.
    A family adds its step (:meth:`logits_int`) and the proven bounds of its intermediates (:meth:`bounds`)."""

    family: ClassVar[str]
    bits: int
    fx: int  # inputs are round(x · 2^fx)
    fh: int  # states are h · 2^fh
    readout: str
    v_levels: np.ndarray  # (C, n) int64
    c: np.ndarray  # (C,) int64, at logit_scale
    logit_scale: float  # one logit unit, in the float model's units
    embedding: np.ndarray | None  # (vocab, d) int64 at 2^-fx
    transform: InputTransform | None = None  # raw → model inputs, before quantize_inputs
    classes: tuple[str, ...] | None = None  # the class names predict prints (the C prints indices)

    @property
    def limits(self) -> tuple[int, int]:
        return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1

    @property
    def input_size(self) -> int:
        """Features per step (token models: the embedding size)."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int | None:
        return len(self.embedding) if self.embedding is not None else None

    def bounds(self, bits: int | None = None) -> list[Bound]:
        """Proven magnitude bounds of every intermediate, for states and inputs of ``bits`` bits
        (default: the model's own)."""
        raise NotImplementedError

    def logits_int(self, x_int: np.ndarray) -> np.ndarray:
        """Integer logits ``(B, C)``, or ``(B, T, C)`` for read-out "all", from integer inputs."""
        raise NotImplementedError

    def check_bounds(self) -> list[Bound]:
        """The bounds, or a ``ValueError`` naming each that needs more than 64 bits and the state
        bits that would fit."""
        rows = self.bounds()
        too_wide = [row for row in rows if row.bits > 64]
        if too_wide:
            fits = next((b for b in range(self.bits - 1, 3, -1) if all(r.bits <= 64 for r in self.bounds(b))), None)
            names = ", ".join(f"{row.what} ({row.bits} bits)" for row in too_wide)
            advice = f"use at most {fits} state bits" if fits else "no state width fits; use fewer input/output bits"
            raise ValueError(f"{names} would overflow 64-bit integers with {self.bits}-bit states: {advice}")
        return rows

    def int32_state_bits(self) -> int | None:
        """The most state bits for which every intermediate fits ``int32_t`` (None: not even 4)."""
        return next((b for b in range(24, 3, -1) if all(r.bits <= 32 for r in self.bounds(b))), None)

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        """Float features → integers ``floor(x · 2^fx + 1/2)``, saturated to ``b`` bits (token ids pass through)."""
        x = np.asarray(x)
        if self.embedding is not None:
            return x.astype(np.int64)
        if not np.isfinite(x).all():
            raise ValueError("inputs must be finite numbers (NaN or infinity has no integer value)")
        low, high = self.limits
        return np.clip(np.floor(x.astype(np.float64) * 2.0 ** self.fx + 0.5), low, high).astype(np.int64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Float view of the integer logits (for comparing with the float model)."""
        return self.logits_int(self.quantize_inputs(x)) * self.logit_scale

    def predict(self, x: np.ndarray) -> np.ndarray:
        logits = self.logits_int(self.quantize_inputs(x))
        return (logits[..., 0] > 0).astype(np.int64) if logits.shape[-1] == 1 else logits.argmax(-1)


@dataclass(kw_only=True)
class IntegerModel(IntegerRNN):
    """The integer HadamRNN (the module's docstring gives its step)."""

    family: ClassVar[str] = "hadamrnn"
    block: int
    signs: np.ndarray  # (n,) int64 ±1
    u_levels: np.ndarray  # (n, d) int64
    u_multiplier: int
    u_shift: int
    b: np.ndarray  # (n,) int64, at 2^-(fh+guard_bits)
    guard_bits: int = GUARD_BITS

    @property
    def input_size(self) -> int:
        return self.u_levels.shape[1]

    @property
    def rotation(self) -> tuple[int, int]:
        """``(R, S)``: ``r = round(a · R / 2^S)`` is ``a 2^G / sqrt(m)`` in integers."""
        return rotation(self.block, self.guard_bits)

    def bounds(self, bits: int | None = None) -> list[Bound]:
        """Proven magnitude bounds of every intermediate of a step and of the read-out, for states and
        inputs of ``bits`` bits (default: the model's own). The input bound comes from the actual
        levels (``max_i Σ_k |U_ik| · max|x|``; token models: the largest ``|U| |e|`` over the embedding
        rows ``e``), the read-out's from the positive and negative parts of each row of ``V`` and its bias."""
        bits = self.bits if bits is None else bits
        state = 1 << (bits - 1)  # the largest |h|: saturation keeps h in [-2^(b-1), 2^(b-1) - 1]
        u = np.abs(self.u_levels).astype(object)
        if self.embedding is not None:
            scale = 1 << max(bits - self.bits, 0)  # embedding entries grow with the bits, as quantized
            products = np.abs(self.embedding).astype(object) @ u.T  # bounds every partial sum too
            input_sum = int(products.max(initial=0)) * scale
        else:
            input_sum = int((u.sum(axis=1) * state).max(initial=0))
        multiplier, shift = self.rotation
        sums = self.block * state
        rotated = round_bound(sums * multiplier, shift)
        input_product = input_sum * self.u_multiplier
        z = round_bound(input_product, self.u_shift) + int(np.abs(self.b).max(initial=0))
        logits = readout_bound(self.v_levels, self.c, 0, state - 1)  # relu(h) in [0, 2^(b-1) - 1]
        half = lambda s: (1 << (s - 1)) if s > 0 else 0  # noqa: E731 (the rounding constant)
        rows = [Bound("sum", "Hadamard sums (I ⊗ H_m) h, plus the rounding constant of r",
                      sums + (half(shift) if multiplier == 1 else 0))]
        if multiplier > 1:
            rows.append(Bound("rotation", f"a · {multiplier} + 2^(S_R-1): 2^G / sqrt(m) applied to a",
                              sums * multiplier + half(shift)))
        rows += [Bound("input", "input sums L_U x", input_sum),
                Bound("input_product", "M_U · L_U x + 2^(S_U-1)", input_product + half(self.u_shift)),
                Bound("update", "s ⊙ r + u + b + 2^(G-1) before the rounding shift", rotated + z + half(self.guard_bits)),
                Bound("logit", "logits L_V relu(h) + c", logits)]
        return rows

    def logits_int(self, x_int: np.ndarray, engine: str = "native") -> np.ndarray:
        """Integer logits ``(B, C)``, or ``(B, T, C)`` for read-out "all", from integer inputs.
        ``engine``: ``"native"``, the compiled recurrence (:func:`hadamrnn.native.fixed_point_forward`,
        which training's fixed-point states run on too), or ``"numpy"``, the step loop it is tested
        against bit for bit."""
        if engine not in ("native", "numpy"):
            raise ValueError(f"engine must be 'native' or 'numpy', got {engine!r}")
        states = self._states_native(x_int) if engine == "native" else self._states_numpy(x_int)
        return np.maximum(states, 0) @ self.v_levels.T + self.c

    def _states_numpy(self, x_int: np.ndarray) -> np.ndarray:
        """The states ``(B, n)`` (or ``(B, T, n)``), one step's input at a time, as on the device."""
        x = self.embedding[x_int] if self.embedding is not None else np.asarray(x_int, dtype=np.int64)
        low, high = self.limits
        multiplier, shift = self.rotation
        h = np.zeros((x.shape[0], len(self.signs)), dtype=np.int64)
        outputs = []
        for t in range(x.shape[1]):
            u = rshift_round((x[:, t] @ self.u_levels.T) * self.u_multiplier, self.u_shift)
            r = rshift_round(fwht(h, self.block) * multiplier, shift)
            h = np.clip(rshift_round(self.signs * r + u + self.b, self.guard_bits), low, high)
            if self.readout == "all":
                outputs.append(h)
        return np.stack(outputs, axis=1) if self.readout == "all" else h

    @cached_property
    def input_table(self) -> np.ndarray:
        """Token models: ``round(M_U (L_U e) / 2^S_U) + b`` for every embedding row ``e`` (V, n), the input
        term of a step, ``G`` bits finer than a state."""
        return rshift_round((self.embedding @ self.u_levels.T) * self.u_multiplier, self.u_shift) + self.b

    def _states_native(self, x_int: np.ndarray) -> np.ndarray:
        from .. import native

        x_int = np.ascontiguousarray(x_int, dtype=np.int64)
        rows, steps, n = x_int.shape[0], x_int.shape[1], len(self.signs)
        kept = steps if self.readout == "all" else 1
        states = np.zeros((rows, kept, n), dtype=np.int64)
        if steps == 0:  # h_0 = 0
            return states if self.readout == "all" else states[:, 0]
        if self.embedding is None:
            arrays = (x_int, np.ascontiguousarray(self.u_levels), int(self.u_multiplier), int(self.u_shift),
                      np.ascontiguousarray(self.b), np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64))
        else:
            arrays = (np.zeros((1, 1, 1), np.int64), np.zeros((1, 1), np.int64), 1, 0, np.zeros(1, np.int64),
                      self.input_table, x_int)
        low, high = self.limits
        multiplier, shift = self.rotation
        native.fixed_point_forward(np.ascontiguousarray(self.signs, dtype=np.int64), self.embedding is None, *arrays,
                                   self.block, multiplier, shift, self.guard_bits, low, high, states,
                                   np.empty(states.shape, np.uint8))
        return states if self.readout == "all" else states[:, 0]


def quantize_model(model: RuntimeModel, calibration: np.ndarray | None, bits: int = 16,
                   scales: tuple[int, int] | None = None) -> IntegerModel:
    """Integer version of an exported model.

    ``calibration``: inputs like the training data, from which the fraction bits ``fx`` (inputs)
    and ``fh`` (states, every step) are chosen so that the largest magnitudes fit; or ``scales =
    (fx, fh)`` as a model trained with fixed-point states fixed them (``hadamrnn.fixedpoint``).
    Products with fractional values are taken in float64, as the training's fake quantization does."""
    if "U" not in model.levels or "V" not in model.levels:
        raise ValueError("integer inference needs a model with quantized U and V (input_bits and output_bits set)")
    if not 4 <= bits <= 24:
        raise ValueError(f"state bits must be in [4, 24], got {bits}")
    u_levels, u_scale = model.levels["U"]
    v_levels, v_scale = model.levels["V"]
    if scales is not None:
        fx, fh = (int(v) for v in scales)
    else:
        inputs = model.embedding if model.embedding is not None else np.asarray(calibration, dtype=np.float64)
        fx = fraction_bits(float(np.abs(inputs).max()), bits)
        fh = fraction_bits(model.state_range(calibration), bits)  # every step counts, not just the last
    u_multiplier, shift = input_multiplier(float(u_scale), fx, fh)
    logit_scale = float(v_scale) * 2.0 ** -fh
    embedding = None
    if model.embedding is not None:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        scaled = np.asarray(model.embedding, dtype=np.float64) * 2.0 ** fx
        embedding = np.clip(np.floor(scaled + 0.5), low, high).astype(np.int64)
    b = np.floor(np.asarray(model.b, dtype=np.float64) * 2.0 ** (fh + GUARD_BITS) + 0.5).astype(np.int64)
    c = np.floor(np.asarray(model.c, dtype=np.float64) / logit_scale + 0.5).astype(np.int64)
    integer = IntegerModel(
        bits=bits, fx=fx, fh=fh, block=model.block, readout=model.config["readout"],
        signs=model.signs.astype(np.int64), u_levels=u_levels.astype(np.int64), u_multiplier=u_multiplier,
        u_shift=shift, b=b, v_levels=v_levels.astype(np.int64), c=c, logit_scale=logit_scale, embedding=embedding,
        transform=model.transform, classes=model.classes)
    integer.check_bounds()
    return integer
