"""Batches that are a function of (seed, epoch, step): resumable mid-epoch and shardable over ranks.

`EpochBatchSampler` shuffles with a generator seeded by (seed, epoch), cuts the order into global
batches, and gives each rank a contiguous share of every global batch. The union of the ranks'
batches at step s is exactly the single-process batch s, which is what makes two-process training
match one-process training with the same global batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Index batches for one epoch at a time; yields keys `epoch * n + i` for `EpochSeededDataset`.

    Args:
        n: dataset size.
        batch_size: the global batch (all ranks together); each rank gets batch_size / world_size.
        shuffle: a fresh order every epoch (seeded by seed and epoch) or the natural order.
        drop_last: drop the last incomplete global batch (training) or keep it (evaluation).
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, drop_last: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1):  # fmt: skip
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} must be divisible by the number of processes {world_size} "
                f"(it is the global batch); use e.g. {world_size * max(1, batch_size // world_size)}"
            )
        if drop_last and n < batch_size:
            raise ValueError(f"{n} training images are fewer than one batch of {batch_size}: lower batch_size")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Choose the epoch to iterate, and how many of its batches were already done (to resume)."""
        self.epoch, self.start_step = epoch, start_step

    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __len__(self) -> int:
        return self.steps_per_epoch() - self.start_step

    def order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self):
        order = self.order()
        offset = self.epoch * self.n
        for step in range(self.start_step, self.steps_per_epoch()):
            batch = order[step * self.batch_size : (step + 1) * self.batch_size]
            mine = np.array_split(batch.numpy(), self.world_size)[self.rank]  # contiguous share
            yield [offset + int(i) for i in mine]


def make_loader(dataset: Dataset, sampler: EpochBatchSampler, num_workers: int = 0, pin_memory: bool = False):
    """A DataLoader over `sampler`'s batches (workers persist across epochs when there are any).

    It gets a generator of its own: every `iter(loader)` draws a seed for its workers, and from the
    global generator that draw would shift the dropout and drop-path randomness of the training
    steps that follow, depending on when the epoch's iterator was made (e.g. after a resume).
    """
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(sampler.seed),
    )  # fmt: skip
