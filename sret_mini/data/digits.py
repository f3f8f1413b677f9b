"""`digits`: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download needed.

The images (from the UCI "Optical Recognition of Handwritten Digits" data, 16 grey levels) are
upsampled once to the model's input size and given three identical colour channels, so every
SReT model reads them unchanged. The train/test split is fixed: stratified 80/20 with seed 0
(1,437 / 360 images).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels); images uint8 (N, 8, 8) in 0..255."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=bunch.target
    )
    return x_train, y_train, x_test, y_test


class DigitsDataset(Dataset):
    """One split of the digits as (PIL RGB image of `img_size` px, label) pairs."""

    classes = [str(d) for d in range(10)]

    def __init__(self, train: bool = True, img_size: int = 16, transform=None):
        x_train, y_train, x_test, y_test = digits_split()
        images, labels = (x_train, y_train) if train else (x_test, y_test)
        self.images = [
            Image.fromarray(im).resize((img_size, img_size), Image.Resampling.BICUBIC).convert("RGB") for im in images
        ]
        self.targets = [int(y) for y in labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.targets[i]
