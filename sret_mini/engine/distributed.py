"""The little that multi-process training needs: who am I, which device, and summing across ranks.

`torchrun` starts one process per GPU (or per CPU worker) and sets RANK, LOCAL_RANK, WORLD_SIZE and
the address of the rendezvous; `setup()` reads them and joins the process group, even in a world
of one (so that `torchrun --nproc_per_node 1` exercises the same path as eight GPUs). On GPUs the
group has two backends: NCCL for CUDA tensors (DDP's gradients) and gloo for CPU tensors (the
loop's flags and counts, pickled objects); on CPUs, gloo alone. A plain `python -m
sret_mini train` is a world of one and touches no process group at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.distributed_c10d import Backend, BackendConfig

#: what torchrun sets; init_process_group("env://") reads all four
_LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    grouped: bool = False  # whether this process joined a process group (DDP, collectives)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.grouped


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto': the local GPU if there is one, else the CPU; or exactly what was asked for."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={requested!r} but no CUDA GPU is available; use device='cpu' or 'auto'")
        return device
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def backend_for(device: torch.device) -> str:
    """The process group's backend for a process computing on `device`.

    NCCL reduces only CUDA tensors; a group of NCCL alone would refuse every CPU tensor the loop
    reduces. "cpu:gloo,cuda:nccl" sends each tensor to the backend of its device.
    """
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def setup(requested_device: str = "auto") -> Dist:
    """Join the process group if launched by torchrun; return this process's place in it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    launched = all(name in os.environ for name in _LAUNCH_VARIABLES)
    if launched and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend_for(device))
    return Dist(rank, local_rank, world_size, device, grouped=dist.is_initialized())


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _reducible_on(device: torch.device) -> torch.device:
    """`device` if the process group's backend reduces tensors there, else this process's GPU.

    A group made elsewhere with NCCL alone (`init_process_group("nccl")`) reduces CUDA tensors only.
    """
    served = BackendConfig(Backend(str(dist.get_backend()))).get_device_backend_map()
    return device if device.type in served else torch.device("cuda", torch.cuda.current_device())


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (identity outside a process group); on the tensor's device."""
    if dist.is_initialized():
        summed = values.to(_reducible_on(values.device), copy=True)
        dist.all_reduce(summed)
        values = summed.to(values.device)
    return values
