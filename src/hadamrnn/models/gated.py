"""LSTM and GRU baselines: PyTorch's own layers with the shared inputs and a linear read-out ``V h + c``."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..options import option
from .common import SequenceModel, Task

__all__ = ["Gated", "LSTMOptions", "GRUOptions", "build"]


class Gated(SequenceModel):
    """``torch.nn.LSTM`` or ``torch.nn.GRU`` (one layer, full precision), read out by ``V h + c``."""

    def __init__(self, task: Task, cell: str, hidden_size: int) -> None:
        super().__init__(task, nn.Linear(hidden_size, task.output_size))
        layer = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = layer(task.input_size, hidden_size, batch_first=True)

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return [self.rnn.weight_hh_l0]  # every gate's hidden-to-hidden weight

    def states(self, x: Tensor, last_only: bool) -> Tensor:
        states = self.rnn(x)[0]
        return states[:, -1] if last_only else states


@dataclass
class LSTMOptions:
    """The ``model:`` keys of an LSTM baseline."""

    name: str = option("lstm", choices=("lstm",))
    hidden_size: int = option(128, low=1, high=2**14)
    embedding_dim: int | None = option(None, low=1, high=2**16)  # token data sets


@dataclass
class GRUOptions:
    """The ``model:`` keys of a GRU baseline."""

    name: str = option("gru", choices=("gru",))
    hidden_size: int = option(128, low=1, high=2**14)
    embedding_dim: int | None = option(None, low=1, high=2**16)


def build(options: LSTMOptions | GRUOptions, task: Task) -> Gated:
    return Gated(task, options.name, options.hidden_size)
