"""Multi-process training under ``torchrun``: process group, device choice, rank helpers.

``torchrun --nproc_per_node N`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; the same command
without it runs as a single process (rank 0 of 1).  Backend: NCCL when each process drives a
CUDA device, gloo on CPU.  Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import PixelwiseError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """True on the one process that writes files and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def pick_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's CUDA device if there is one, else CPU."""
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PixelwiseError(f"device '{spec}' requested but CUDA is not available (use --device cpu)")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def launched() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from torchrun's environment (``(0, 1, 0)`` without it),
    for jobs that split work by rank and never communicate (no process group is joined)."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def setup(device: str = "auto") -> World:
    """Join the torchrun process group if launched by torchrun; returns this process's place."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if size <= 1:
        return World(device=dev)
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        # on GPUs: NCCL for the gradients, gloo too so CPU tensors (confusion matrices) can reduce
        dist.init_process_group("cpu:gloo,cuda:nccl" if dev.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local, dev)


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def mean_across(world: World, value: float) -> float:
    """Average a Python number over processes (e.g. the logged training loss)."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / world.size
