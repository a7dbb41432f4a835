"""What every model family shares: inputs (float features or token ids through an embedding), the
many-to-one / many-to-many read-out, and the task a model is built for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["Task", "check_inputs", "SequenceModel"]


@dataclass(frozen=True)
class Task:
    """The shapes a data set imposes: ``input_size`` features per step (for tokens: the embedding
    size), ``output_size`` logits, ``vocab_size`` when inputs are token ids, and the read-out."""

    input_size: int
    output_size: int
    vocab_size: int | None = None
    readout: Literal["last", "all"] = "last"


def check_inputs(inputs: Tensor, vocab_size: int | None, input_size: int) -> None:
    """A ``ValueError`` saying what was expected unless ``inputs`` is ``(B, T)`` token ids (with a
    vocabulary) or ``(B, T, input_size)`` floats, with ``T >= 1``."""
    if vocab_size is not None:
        if inputs.dim() != 2 or inputs.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"this model embeds token ids: expected an integer tensor (B, T), got "
                             f"{inputs.dtype} of shape {tuple(inputs.shape)}")
    elif inputs.dim() != 3 or not torch.is_floating_point(inputs) or inputs.shape[-1] != input_size:
        hint = " (add a feature axis: x.unsqueeze(-1))" if inputs.dim() == 2 and input_size == 1 else ""
        raise ValueError(f"expected float inputs of shape (B, T, {input_size}), got {inputs.dtype} "
                         f"of shape {tuple(inputs.shape)}{hint}")
    if inputs.shape[1] == 0:
        raise ValueError("sequences must have at least one time step (T >= 1)")


class SequenceModel(nn.Module):
    """Base of the baseline families: ``forward`` embeds (token models), checks the inputs, runs the
    subclass's :meth:`states` ``(B, T, n)`` and reads out ``head(activation(h))`` at the last step
    (``(B, C)``) or at every step (``(B, T, C)``)."""

    def __init__(self, task: Task, head: nn.Module, activation: nn.Module | None = None) -> None:
        super().__init__()
        self.task = task
        self.embedding = nn.Embedding(task.vocab_size, task.input_size, padding_idx=0) if task.vocab_size else None
        self.output = head
        self.activation = activation if activation is not None else nn.Identity()

    def states(self, x: Tensor, last_only: bool) -> Tensor:
        """Hidden states ``(B, T, n)`` of float inputs ``(B, T, d)`` (embedded already), or only the
        last, ``(B, n)``, when ``last_only``."""
        raise NotImplementedError

    def recurrent_parameters(self) -> list[nn.Parameter]:
        """The parameters of the recurrent weight (hidden to hidden): ``optim.recurrent_lr`` trains them."""
        raise NotImplementedError

    def forward(self, inputs: Tensor) -> Tensor:
        check_inputs(inputs, self.task.vocab_size, self.task.input_size)
        x = self.embedding(inputs) if self.embedding is not None else inputs
        return self.output(self.activation(self.states(x, last_only=self.task.readout == "last")))

    def size_rows(self) -> list:
        """Every parameter at 32 bits (families with quantized tensors override their rows)."""
        from ..size import quantized_size

        return [quantized_size(name, tuple(p.shape), None) for name, p in self.named_parameters()]
