"""Training on several processes: ``torchrun --nproc_per_node=N -m hadamrnn.cli train ...``.

torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`join` then opens the process
group (``gloo`` on the CPU, ``nccl`` on CUDA) and the training loop works with a :class:`Ranks`:
every process draws the same global batch (the order is seeded by seed and epoch), takes its share
of it, and DistributedDataParallel averages the gradients; sums (training loss, hits, counts, a
stop request) and evaluation are reduced over the processes; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Ranks", "join", "leave"]


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` processes (``Ranks()``: one process)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints and writes the run directory."""
        return self.rank == 0

    def share(self, indices: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch: every ``world``-th index from ``rank``."""
        return indices[self.rank::self.world]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the processes (float64)."""
        if self.world == 1:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total)
        return total.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def join(device: str) -> tuple[Ranks, str]:
    """The ranks of this process and the device it trains on (``cuda`` becomes ``cuda:LOCAL_RANK``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Ranks(rank, world), device


def leave(ranks: Ranks) -> None:
    if ranks.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
