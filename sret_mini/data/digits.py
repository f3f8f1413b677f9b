"""`digits`: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download needed.

The images (from the UCI "Optical Recognition of Handwritten Digits" data, 16 grey levels) are
upsampled once to the model's input size and given three identical colour channels, so every
SReT model reads them unchanged. The train/test split is fixed: stratified 80/20 with seed 0
(1,437 / 360 images). Two options change the training split only: `per_class` keeps the first
images of each digit (a small labelled set), `label_noise` gives a fixed fraction of the training
images a wrong label (the distillation chapter's students learn from such labels; its teacher does not).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0
NOISE_SEED = 0  # which training labels `label_noise` changes, and to what: the same in every run


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


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` images of every class, in their original order."""
    if per_class < 1:
        raise ValueError(f"per_class={per_class}: keep at least one image of each class")
    keep = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:per_class]] = True
    return np.flatnonzero(keep)


def noisy_labels(labels: np.ndarray, fraction: float, num_classes: int = 10, seed: int = NOISE_SEED) -> np.ndarray:
    """A copy of `labels` in which `round(fraction * n)` labels, drawn with `seed`, name another class."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"label_noise={fraction}: a fraction of the labels, between 0 and 1")
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    wrong = rng.choice(len(labels), size=round(fraction * len(labels)), replace=False)
    noisy[wrong] = (labels[wrong] + rng.integers(1, num_classes, size=len(wrong))) % num_classes
    return noisy


class DigitsDataset(Dataset):
    """One split of the digits as (PIL RGB image of `img_size` px, label) pairs.

    `per_class`: keep only the first `per_class` images of each digit (None: all of them).
    `label_noise`: the fraction of (kept) images whose label is replaced by a wrong one; the true
    labels stay in `clean_targets`.
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train: bool = True, img_size: int = 16, transform=None, per_class: int | None = None,
                 label_noise: float = 0.0):  # fmt: skip
        x_train, y_train, x_test, y_test = digits_split()
        images, labels = (x_train, y_train) if train else (x_test, y_test)
        if per_class is not None:
            kept = first_per_class(labels, per_class)
            images, labels = images[kept], labels[kept]
        self.images = [
            Image.fromarray(im).resize((img_size, img_size), Image.Resampling.BICUBIC).convert("RGB") for im in images
        ]
        self.clean_targets = [int(y) for y in labels]
        self.targets = [int(y) for y in (noisy_labels(labels, label_noise) if label_noise else labels)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.targets[i]
