"""The little that multi-process training needs: who am I, which device, and summing across ranks.

`torchrun` starts one process per GPU (or per CPU worker) and sets RANK, LOCAL_RANK and WORLD_SIZE;
`setup()` reads them and joins the process group (NCCL on GPUs, gloo on CPUs). A plain
`python -m sret_mini.train` is a world of one and touches no process group at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto': the local GPU if there is one, else the CPU; or exactly what was asked for."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={requested!r} but no CUDA GPU is available; use device='cpu' or 'auto'")
        return device
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def setup(requested_device: str = "auto") -> Dist:
    """Join the process group if launched by torchrun; return this process's place in it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, local_rank, world_size, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (identity in a world of one)."""
    if dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values)
    return values
