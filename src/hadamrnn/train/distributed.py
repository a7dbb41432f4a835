"""Training on several processes: ``torchrun --nproc_per_node=N -m hadamrnn.cli train ...``.

torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`join` then opens the process
group (``gloo`` on the CPU, ``nccl`` on CUDA) and the training loop works with a :class:`Ranks`:
every process draws the same global batch (the order is seeded by seed and epoch), takes its share
of it, and DistributedDataParallel averages the gradients; sums (training loss, hits, counts, a
stop request) and evaluation are reduced over the processes; only rank 0 writes files.
"""

from __future__ import annotations

import gc
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
        # DistributedDataParallel imports torch._dynamo; imported once a group exists, it keeps that
        # group alive past destroy_process_group (torch 2.13), and with it the worker threads that
        # leave() must join. Imported first, it does not.
        import torch._dynamo  # noqa: F401

        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Ranks(rank, world), device


def leave(ranks: Ranks) -> None:
    """Close the process group; call it once the training's own references to it are gone.

    The group must be freed here, while the interpreter runs: freeing it joins its worker threads.
    A worker that outlives the interpreter's shutdown and then drops its reference to a tensor of
    a finished collective takes the GIL there and aborts the process ("terminate called without an
    active exception"; about one two-process run in 50 on two busy cores). The collection first
    frees whatever reference cycle still holds the DistributedDataParallel wrapper, which holds the
    group."""
    if ranks.world > 1 and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
