"""HadamRNN and Block-HadamRNN.

``h_t = W h_{t-1} + U x_t + b`` (``h_0 = 0``), ``y = V relu(h) + c``, read at the last step or at
every step. ``W = diag(sign u)(I ⊗ H_m)/sqrt(m)`` is a parametrization of a plain ``nn.Linear``;
``U`` and ``V`` are quantized to ``p`` bits; biases and the optional embedding stay full precision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Callable, Literal, Sequence

import torch
from torch import Tensor, nn

from ..engine import ENGINE_NAMES, recur
from ..fixedpoint import FixedPointStates
from ..hadamard import check_power_of_two
from ..layers import QuantizedLinear
from ..recurrent import CYCLIC_MAX_BLOCK, SIGN_INITS, SignedHadamard, hadamard_orthogonal, latent, parametrization
from ..options import OptionError, option
from ..size import TensorSize, quantized_size
from .common import Task, check_inputs

__all__ = ["HadamRNNConfig", "HadamRNN"]

# Finer state scales than the largest state allows that calibration with a score tries (HadamRNN.calibrate).
STATE_HEADROOM = 3


@dataclass
class HadamRNNConfig:
    """Hyper-parameters of a HadamRNN.

    Attributes:
        input_size: features per time step ``d`` (with an embedding: the embedding dimension).
        hidden_size: ``n``, a power of two.
        output_size: number of outputs ``C`` (classes, or 1 for a binary logit).
        block_size: ``m`` for Block-HadamRNN, ``None`` for the full ``H_n``.
        input_bits, output_bits: bits of ``U`` and ``V`` (``None`` = full precision).
        vocab_size: when set, inputs are token ids ``(B, T)`` embedded in ``input_size`` dims (id 0 = padding).
        readout: ``"last"`` (many-to-one, output ``(B, C)``) or ``"all"`` (many-to-many, ``(B, T, C)``).
        engine: sequence engine: "auto" (by shapes), "loop" (step-by-step oracle), "fused" or "kernel"
            (see ``hadamrnn.engine``).
        state_bits: ``None`` (float states) or ``b``: train with ``b``-bit fixed-point states and inputs,
            exactly as the integer model deploys them (``hadamrnn.fixedpoint``); needs ``input_bits``
            and ``output_bits``. Its recurrence is a compiled node of its own (``engine="loop"``: the
            step-by-step oracle).
        state_noise: ``None``, or ``σ``: in training only, as if a Gaussian of standard deviation ``σ``
            (float units) were added to the state at every step, a stand-in for the rounding of
            fixed-point states (``2^-fh / sqrt(12)`` per step) that keeps the fast float engines. For
            an orthogonal ``W`` the last state's noise is exactly Gaussian with ``σ sqrt(T)`` per unit, so
            that is what is added (many-to-one models only).
        sign_init: the initial signs of ``W``: ``"random"`` (i.i.d., the paper) or ``"cyclic"`` (redrawn
            until ``W`` repeats no eigenvalue, ``hadamrnn.recurrent.cyclic_signs``; worth most when
            ``W`` stays at its initial signs and the input has few features, as in pMNIST).
    """

    input_size: int = 1
    hidden_size: int = 128
    output_size: int = 10
    block_size: int | None = None
    input_bits: int | None = 4
    output_bits: int | None = 4
    vocab_size: int | None = None
    readout: Literal["last", "all"] = "last"
    engine: str = "auto"
    state_bits: int | None = None
    state_noise: float | None = None
    sign_init: Literal["random", "cyclic"] = "random"

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "output_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        check_power_of_two(self.hidden_size, "hidden_size")
        if self.block_size is not None:
            check_power_of_two(self.block_size, "block_size")
            if self.block_size > self.hidden_size:
                raise ValueError(f"block_size {self.block_size} exceeds hidden_size {self.hidden_size}")
        for name in ("input_bits", "output_bits"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 16):
                raise ValueError(f"{name} must be an int in [2, 16] or None (full precision), got {value!r}")
        if self.vocab_size is not None and (not isinstance(self.vocab_size, int) or self.vocab_size < 2):
            raise ValueError(f"vocab_size must be an int >= 2 (id 0 is padding) or None, got {self.vocab_size!r}")
        if self.readout not in ("last", "all"):
            raise ValueError(f"readout must be 'last' or 'all', got {self.readout!r}")
        if self.sign_init not in SIGN_INITS:
            raise ValueError(f"sign_init must be one of {list(SIGN_INITS)}, got {self.sign_init!r}")
        if self.engine not in ENGINE_NAMES:
            raise ValueError(f"engine must be one of {list(ENGINE_NAMES)}, got {self.engine!r}")
        if self.state_bits is not None:
            if isinstance(self.state_bits, bool) or not isinstance(self.state_bits, int) or not 4 <= self.state_bits <= 16:
                raise ValueError(f"state_bits must be an int in [4, 16] or None (float states), got {self.state_bits!r}")
            if self.input_bits is None or self.output_bits is None:
                raise ValueError("state_bits (fixed-point states) needs quantized U and V: set input_bits and output_bits")
        if self.state_noise is not None:
            if isinstance(self.state_noise, bool) or not isinstance(self.state_noise, (int, float)) \
                    or not math.isfinite(self.state_noise) or self.state_noise < 0:
                raise ValueError(f"state_noise must be a finite number >= 0 or None, got {self.state_noise!r}")
            if self.readout != "last":
                raise ValueError("state_noise needs a many-to-one model (readout 'last'), where the noise of the "
                                 "last state has a closed form")
            if self.state_bits is not None:
                raise ValueError("state_noise stands in for fixed-point rounding; with state_bits the training "
                                 "rounds exactly: set one of them")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "HadamRNNConfig":
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(f"unknown model key(s) {unknown}; valid keys: {sorted(valid)}")
        return cls(**values)


class HadamRNN(nn.Module):
    """Recurrent network with a binary (or sparse ternary) orthogonal recurrent matrix.

    Input ``(B, T, d)`` floats, or ``(B, T)`` integer token ids when ``config.vocab_size`` is set.
    Output ``(B, C)`` for ``readout="last"``, ``(B, T, C)`` for ``readout="all"``.
    """

    def __init__(self, config: HadamRNNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        n = config.hidden_size
        self.embedding = (nn.Embedding(config.vocab_size, config.input_size, padding_idx=0)
                          if config.vocab_size is not None else None)
        self.input = QuantizedLinear(config.input_size, n, quantizer=config.input_bits)  # U, b
        nn.init.zeros_(self.input.bias)
        self.recurrent = hadamard_orthogonal(nn.Linear(n, n, bias=False), block=config.block_size,
                                             generator=generator, signs=config.sign_init)  # W
        self.output = QuantizedLinear(n, config.output_size, quantizer=config.output_bits)  # V, c
        self.fixed_point = FixedPointStates(config.state_bits) if config.state_bits is not None else None

    @property
    def recurrence(self) -> SignedHadamard:
        """The parametrization ``u ↦ W``."""
        return parametrization(self.recurrent)

    def recurrent_parameters(self) -> list[nn.Parameter]:
        """``[u]``: the latent whose signs are ``W``'s (``optim.recurrent_lr``, alias ``latent_lr``)."""
        return [self.latent]

    @property
    def latent(self) -> nn.Parameter:
        """The latent vector ``u`` of shape ``(n,)``."""
        return latent(self.recurrent)

    def _recur(self, inputs: Tensor, head: tuple[Tensor, Tensor] | None) -> Tensor:
        check_inputs(inputs, self.config.vocab_size, self.config.input_size)
        embedding = self.embedding.weight if self.embedding is not None else None
        return recur(self.config.engine, self.recurrence, self.latent, inputs,
                     self.input.quantized_weight(), self.input.bias, self.config.readout, embedding, head)

    def states(self, inputs: Tensor) -> Tensor:
        """Pre-activation hidden states: ``(B, n)`` at the last step, or ``(B, T, n)`` for ``readout="all"``."""
        return self._recur(inputs, None)

    def forward(self, inputs: Tensor) -> Tensor:
        if self.fixed_point is not None:
            return self._fixed_point_forward(inputs)
        if self.training and self.config.state_noise:
            last = self._recur(inputs, None)
            noise = torch.randn_like(last) * (self.config.state_noise * math.sqrt(inputs.shape[1]))
            return self.output(torch.relu(last + noise))
        # The engine applies the read-out itself, so that a fast one need not materialise every state.
        return self._recur(inputs, (self.output.quantized_weight(), self.output.bias))

    @torch.no_grad()
    def calibrate(self, inputs: Tensor | Sequence[Tensor], score: Callable[[list[Tensor]], float] | None = None) -> None:
        """Fixed-point scales (``state_bits``) for the current weights, from ``inputs``: one batch or
        a list of batches.

        First as post-training quantization chooses them: the largest ``|x|`` (token models: of the
        embedding) and the largest ``|h_t|`` of the float recurrence over every step. With ``score``
        (the fixed-point logits of every batch ↦ a loss, lower is better), the finer state scales
        ``fh + 1 … fh + STATE_HEADROOM`` are tried too, and the best-scoring one is kept: they
        saturate the rare largest states but round the others more finely, which at 8 bits is
        worth far more (HAR-6, the float model quantized: test accuracy 0.69 at ``fh``, 0.81 at
        ``fh + 2``). The training loop calls it with its loss on the first training samples
        before the first step and after every epoch; the first forward pass of an uncalibrated
        model calls it on its own batch, without a score."""
        if self.fixed_point is None:
            return
        batches = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        embedding = self.embedding.weight if self.embedding is not None else None
        peak_x, peak_h = 0.0, 0.0
        for x in batches:
            check_inputs(x, self.config.vocab_size, self.config.input_size)
            states = recur("fused", self.recurrence, self.latent, x, self.input.quantized_weight(), self.input.bias,
                           "all", embedding)
            peak_x = max(peak_x, float(embedding.abs().max() if embedding is not None else x.abs().max()))
            peak_h = max(peak_h, float(states.abs().max()))
        self.fixed_point.calibrate(peak_x, peak_h)
        if score is None:
            return
        coarsest = int(self.fixed_point.fh)
        losses = {}
        for fh in range(coarsest, coarsest + STATE_HEADROOM + 1):
            self.fixed_point.fh.fill_(fh)
            losses[fh] = score([self(x) for x in batches])
        self.fixed_point.fh.fill_(min(losses, key=losses.get))

    def _fixed_point_forward(self, inputs: Tensor) -> Tensor:
        """Logits of the fixed-point model (float64)."""
        check_inputs(inputs, self.config.vocab_size, self.config.input_size)
        if not bool(self.fixed_point.calibrated):
            self.calibrate(inputs)
        x = self.embedding(inputs) if self.embedding is not None else inputs
        states = self.fixed_point
        U_levels, U_scale = self.input.quantizer.levels(self.input.weight)
        V_levels, V_scale = self.output.quantizer.levels(self.output.weight)
        return states.run(self.recurrence.signs(self.latent), self.recurrence.block, x, U_levels, U_scale,
                          self.input.quantized_weight(), self.input.bias, V_levels, V_scale,
                          self.output.quantized_weight(), self.output.bias, self.config.readout,
                          self.config.engine)

    @torch.no_grad()
    def effective_weights(self) -> dict[str, Tensor]:
        """The tensors the forward pass really uses (after quantization), detached.

        ``W`` (n, n) dense, ``U`` (n, d), ``b`` (n,), ``V`` (C, n), ``c`` (C,), and ``embedding``
        (vocab, d) when present: enough to rebuild the forward pass independently.
        """
        weights = {
            "W": self.recurrent.weight.detach().clone(),
            "U": self.input.quantized_weight().detach().clone(),
            "b": self.input.bias.detach().clone(),
            "V": self.output.quantized_weight().detach().clone(),
            "c": self.output.bias.detach().clone(),
        }
        if self.embedding is not None:
            weights["embedding"] = self.embedding.weight.detach().clone()
        return weights

    def size_rows(self) -> list[TensorSize]:
        """Per-tensor deployed sizes, in the order W, U, b, V, c[, embedding] (``hadamrnn.size``)."""
        c = self.config
        n, d, classes = c.hidden_size, c.input_size, c.output_size
        block = self.recurrence.block
        ternary = block < n
        rows = [
            TensorSize("W", (n, n), f"{n} sign bits ({'block ' + str(block) if ternary else 'full'} Hadamard)",
                       n, (2 if ternary else 1) * n * n),
            quantized_size("U", (n, d), c.input_bits),
            quantized_size("b", (n,), None),
            quantized_size("V", (classes, n), c.output_bits),
            quantized_size("c", (classes,), None),
        ]
        if self.embedding is not None:
            rows.append(quantized_size("embedding", (c.vocab_size, d), None))
        return rows


@dataclass
class Options:
    """The ``model:`` keys of a HadamRNN config (defaults: the paper's 4-bit U/V, full Hadamard)."""

    name: str = option("hadamrnn", choices=("hadamrnn",))
    hidden_size: int = option(128, low=1, high=2**16, power_of_two=True)
    block_size: int | None = option(None, low=1, high=2**16, power_of_two=True)  # None: full Hadamard
    input_bits: int | None = option(4, low=2, high=16)  # None: full precision
    output_bits: int | None = option(4, low=2, high=16)
    embedding_dim: int | None = option(None, low=1, high=2**16)  # token data sets
    engine: str = option("auto", choices=ENGINE_NAMES)
    state_bits: int | None = option(None, low=4, high=16)  # None: float states; b: fixed-point training
    state_noise: float | None = option(None, low=0.0, high=1e3)  # per-step Gaussian noise in training (float units)
    sign_init: str = option("random", choices=SIGN_INITS)  # "cyclic": initial W repeats no eigenvalue

    def __post_init__(self) -> None:
        if self.state_bits is not None and (self.input_bits is None or self.output_bits is None):
            raise OptionError("model.state_bits (fixed-point states) needs model.input_bits and model.output_bits")
        if self.state_noise is not None and self.state_bits is not None:
            raise OptionError("model.state_noise stands in for fixed-point rounding; with model.state_bits the "
                              "training rounds exactly: set one of them")
        block = self.hidden_size if self.block_size is None else self.block_size
        if self.sign_init == "cyclic" and block > CYCLIC_MAX_BLOCK:
            raise OptionError(f"model.sign_init: 'cyclic' computes the eigenvalues of each {block} x {block} block "
                              f"of W, too slow above {CYCLIC_MAX_BLOCK} (4096: about 4 s a draw, up to 128 draws); "
                              f"set model.block_size <= {CYCLIC_MAX_BLOCK} or model.sign_init: random")
        if self.block_size is not None and self.block_size > self.hidden_size:
            raise OptionError(f"model.block_size: {self.block_size} exceeds model.hidden_size {self.hidden_size}; "
                              f"use a power of two <= {self.hidden_size}")


def build(options: Options, task: Task) -> HadamRNN:
    return HadamRNN(HadamRNNConfig(input_size=task.input_size, hidden_size=options.hidden_size,
                                   output_size=task.output_size, block_size=options.block_size,
                                   input_bits=options.input_bits, output_bits=options.output_bits,
                                   vocab_size=task.vocab_size, readout=task.readout, engine=options.engine,
                                   state_bits=options.state_bits, state_noise=options.state_noise,
                                   sign_init=options.sign_init))
