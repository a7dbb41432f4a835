"""TensorBoard event files for a run (``hadamrnn train --tensorboard``): ``RUN/tensorboard/``.

Every step: the batch's loss, the running training loss and metric of the epoch, the learning rate,
the gradient's 2-norm before clipping and, for HadamRNN, the signs of ``W`` flipped since the
epoch began. Every epoch: each number of its ``metrics.jsonl`` record (``epoch/…``, at the epoch's
last global step). At the end: the test results (``test/…``). A resumed run purges the events
logged after its checkpoint's step, so the curves show each step once.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TensorBoardLog", "require_tensorboard", "INSTALL"]

INSTALL = "pip install 'hadamrnn[tensorboard]'"


def require_tensorboard() -> None:
    """A ``ValueError`` naming the extra to install unless ``torch.utils.tensorboard`` can be used
    (a missing extra is a usage error, reported by the command line as the others are)."""
    try:
        import torch.utils.tensorboard  # noqa: F401  (needs the tensorboard package)
    except ImportError:
        raise ValueError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None


class TensorBoardLog:
    """Scalars of one run, written by ``torch.utils.tensorboard`` (:func:`require_tensorboard`).
    ``first_step``: the global step training continues after (0 for a new run)."""

    def __init__(self, run_dir: Path, first_step: int) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=first_step + 1 if first_step else None,
                                    flush_secs=30)

    def step(self, global_step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"step/{name}", value, global_step)

    def epoch(self, record: dict) -> None:
        for name, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ("epoch", "step"):
                self.writer.add_scalar(f"epoch/{name}", value, record["step"])
        self.writer.flush()  # an epoch's events survive a crash in the next

    def results(self, results: dict, global_step: int) -> None:
        for name, value in results.items():
            if name.startswith("test_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"test/{name[len('test_'):]}", value, global_step)

    def close(self) -> None:
        self.writer.close()
