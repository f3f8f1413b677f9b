"""Augmentation from timm, made reproducible per sample.

`build_transform` wraps `timm.data.create_transform` (RandomResizedCrop, flips, RandAugment,
random erasing, normalisation). `EpochSeededDataset` runs a transform with its randomness seeded by
(seed, epoch, index): sample i of epoch e is augmented the same way whichever worker loads it,
whether the run was interrupted and resumed, and however many processes share the data.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image
from timm.data import auto_augment as timm_augment
from timm.data import create_transform
from torch.utils.data import Dataset


def build_transform(
    img_size: int,
    train: bool,
    mean: tuple,
    std: tuple,
    *,
    augment: bool = True,
    hflip: float = 0.5,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    auto_augment: str | None = None,
    color_jitter: float = 0.0,
    re_prob: float = 0.0,
    crop_pct: float = 1.0,
    interpolation: str = "bicubic",
):
    """timm's training or evaluation transform: PIL image -> normalised (3, img_size, img_size) tensor.

    Training: RandomResizedCrop(scale, ratio), horizontal flip with probability `hflip`, RandAugment
    (`auto_augment`, e.g. "rand-m9-mstd0.5-inc1"), colour jitter of strength `color_jitter` (0: none;
    timm's own default would be 0.4, and timm drops it when RandAugment is on), random erasing with
    probability `re_prob`.
    `augment=False` trains on the evaluation view. Evaluation: resize to img_size / crop_pct, centre crop.
    """
    if train and augment:
        transform = create_transform(
            img_size, is_training=True, scale=scale, ratio=ratio, hflip=hflip, vflip=0.0,
            auto_augment=auto_augment, color_jitter=color_jitter or None, re_prob=re_prob, re_mode="pixel", re_count=1,
            interpolation=interpolation, mean=mean, std=std,
        )  # fmt: skip
        for step in transform.transforms:
            for op in getattr(step, "ops", ()):  # RandAugment / AutoAugment operations
                if op.aug_fn is timm_augment.posterize:
                    op.aug_fn = posterize
        return transform
    return create_transform(
        img_size, is_training=False, crop_pct=crop_pct, interpolation=interpolation, mean=mean, std=std
    )


def posterize(img: Image.Image, bits_to_keep: int, **kwargs) -> Image.Image:
    """timm's posterize, where keeping 0 bits gives a black image instead of an error.

    RandAugment's "inc1" policies map magnitude 10 (the clipped top of "m9-mstd0.5", about one
    draw in 40) to a posterize keeping 0 bits. Pillow before 13 returned a black image; Pillow 13 raises
    ValueError, which would stop a training run at a random step. This keeps the old result.
    """
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return timm_augment.posterize(img, bits_to_keep, **kwargs)


@contextmanager
def seeded_rng(seed: int):
    """Seed Python's, NumPy's and torch's global generators for a block, then put them back."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for sample `index` of `epoch`, well mixed from the three numbers."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class EpochSeededDataset(Dataset):
    """A dataset of (image, label) with a transform; item `epoch * len(base) + i` is sample i of `epoch`.

    The batch sampler encodes the epoch into the index it asks for, so workers (even persistent
    ones) need no state: the augmentation of every sample is a pure function of (seed, epoch, i).
    """

    def __init__(self, base: Dataset, transform, seed: int = 0, random: bool = True):
        # random=False: the transform draws no random numbers (evaluation), so skip the seeding
        self.base, self.transform, self.seed, self.random = base, transform, seed, random

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int):
        epoch, i = divmod(int(key), len(self.base))
        image, label = self.base[i]
        if not self.random:
            return self.transform(image), label
        with seeded_rng(sample_seed(self.seed, epoch, i)):
            return self.transform(image), label
