"""Datasets for sret_mini, from the offline ones (`digits`, `shapes`) to ImageNet.

    >>> spec = load_dataset("digits")
    >>> spec.num_classes, spec.img_size, len(spec.train), len(spec.test)
    (10, 16, 1437, 360)

`load_dataset` returns a `DataSpec`: the raw train and test datasets (items are (PIL image,
label)), the class names, the input size the models use for it, the normalisation statistics and
the augmentation defaults that suit it. `data/README.md` gives each dataset's source, licence, size
and where its files land.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch.utils.data import Dataset

from .download import DatasetUnavailable, default_data_dir
from .loader import EpochBatchSampler, make_loader
from .transforms import EpochSeededDataset, build_transform

HALF = (0.5, 0.5, 0.5)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
DATASETS = (
    "digits", "shapes", "pointers", "arrows", "cifar10", "cifar100", "imagenette", "imagefolder", "imagenet100",
)


@dataclass
class DataSpec:
    """A dataset and what a model needs to know about it."""

    name: str
    train: Dataset
    test: Dataset
    classes: list[str]
    img_size: int  # the input size models use for this dataset
    mean: tuple = HALF
    std: tuple = HALF
    crop_pct: float = 1.0  # evaluation: resize to img_size / crop_pct, then centre crop
    augment: dict = field(default_factory=dict)  # defaults for build_transform (scale, hflip, ...)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def transform(self, train: bool, img_size: int | None = None, **overrides):
        """timm transform for this dataset; `overrides` replace the dataset's augmentation defaults."""
        options = {**self.augment, **{k: v for k, v in overrides.items() if v is not None}}
        return build_transform(img_size or self.img_size, train, self.mean, self.std, crop_pct=self.crop_pct, **options)


def _digits(root, download, img_size=None, train_per_class: int | None = None, train_label_noise: float = 0.0):
    from .digits import DigitsDataset

    size = img_size or 16
    train = DigitsDataset(True, size, per_class=train_per_class, label_noise=train_label_noise)
    test = DigitsDataset(False, size)
    # digits are not mirror-symmetric; crops stay mild so a digit never leaves the frame
    return DataSpec("digits", train, test, DigitsDataset.classes, size,
                    augment=dict(hflip=0.0, scale=(0.7, 1.0), ratio=(0.85, 1.15)))  # fmt: skip


def _shapes(root, download, img_size=None, n_train: int = 6000, n_test: int = 1000, seed: int = 0):
    from .shapes import CLASSES, ShapesDataset

    size = img_size or 32
    train = ShapesDataset(n_train, size, seed=seed)
    test = ShapesDataset(n_test, size, seed=seed + 1)  # other images, same distribution
    # the label is a relation between the two halves: no crops that could cut an object away
    return DataSpec("shapes", train, test, list(CLASSES), size, augment=dict(augment=False))


def _pointers(root, download, img_size=None, n_train: int = 4000, n_test: int = 1000, hops: int = 4, objects: int = 6,
              seed: int = 0):  # fmt: skip
    from .pointers import CLASSES, GRID, PointersDataset

    cell = max(4, (img_size or 16) // GRID)  # cells of the requested size
    train = PointersDataset(n_train, hops, objects, cell, seed=seed)
    test = PointersDataset(n_test, hops, objects, cell, seed=seed + 1)  # other images, same distribution
    # the objects sit in fixed cells and are told apart by colour: no crop, flip or colour change
    return DataSpec("pointers", train, test, list(CLASSES), train.img_size, augment=dict(augment=False))


def _arrows(root, download, img_size=None, n_train: int = 4000, n_test: int = 1000, steps: int = 4, colours: int = 4,
            two_cycles: bool = False, seed: int = 0):  # fmt: skip
    from .arrows import IMG_SIZE, ArrowsDataset

    if img_size not in (None, IMG_SIZE):
        raise ValueError(f"img_size={img_size}: arrows images are {IMG_SIZE} px (8 x 8 cells of 4 px); leave it unset")
    train = ArrowsDataset(n_train, steps, colours, two_cycles=two_cycles, seed=seed)
    test = ArrowsDataset(n_test, steps, colours, two_cycles=two_cycles, seed=seed + 1)  # other images, same distribution
    # every cell's pixels are its colour and its arrow: no crop, flip or colour change
    return DataSpec("arrows", train, test, list(train.classes), IMG_SIZE, augment=dict(augment=False))


def _cifar(name):
    def build(root, download, img_size=None):
        from .cifar import cifar_splits

        train, test = cifar_splits(name, root, download)
        return DataSpec(name, train, test, list(train.classes), img_size or 32, CIFAR_MEAN, CIFAR_STD,
                        augment=dict(scale=(0.35, 1.0)))  # fmt: skip

    return build


def _imagenette(root, download, img_size=None, size: str = "160px"):
    from .folders import imagenette_splits

    train, val = imagenette_splits(root, size, download)
    classes = [names[0] for names in train.classes]
    default = 160 if size == "160px" else 224
    return DataSpec("imagenette", train, val, classes, img_size or default, IMAGENET_DEFAULT_MEAN,
                    IMAGENET_DEFAULT_STD, crop_pct=0.875)  # fmt: skip


def _imagefolder(root, download, img_size=None):
    from .folders import image_folder_splits

    train, val = image_folder_splits(root)
    return DataSpec("imagefolder", train, val, list(train.classes), img_size or 224, IMAGENET_DEFAULT_MEAN,
                    IMAGENET_DEFAULT_STD, crop_pct=0.875)  # fmt: skip


def _imagenet100(root, download, img_size=None, class_list: str | None = None):
    from .folders import IMAGENET100_LIST, imagenet100_splits

    train, val = imagenet100_splits(root, Path(class_list) if class_list else IMAGENET100_LIST)
    return DataSpec("imagenet100", train, val, list(train.classes), img_size or 224, IMAGENET_DEFAULT_MEAN,
                    IMAGENET_DEFAULT_STD, crop_pct=0.875)  # fmt: skip


_BUILDERS = {
    "digits": _digits,
    "shapes": _shapes,
    "pointers": _pointers,
    "arrows": _arrows,
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "imagenette": _imagenette,
    "imagefolder": _imagefolder,
    "imagenet100": _imagenet100,
}


def load_dataset(
    name: str, root: str | Path | None = None, img_size: int | None = None, download: bool = True, **options
) -> DataSpec:
    """Load a dataset by name.

    Args:
        name: one of `DATASETS`.
        root: where its files are (default `default_data_dir()`, the repository's `data/`). For
            `imagefolder` and `imagenet100`, the folder holding `train/` and `val/`.
        img_size: the model input size (default: the dataset's own, e.g. 16 for digits, 32 for CIFAR).
        download: fetch a missing downloadable dataset (CIFAR, Imagenette). Without network this
            fails within seconds with the expected path and the command that fetches the files.
        **options: dataset-specific: digits (train_per_class: the first images of each digit
            only; train_label_noise: the fraction of training labels made wrong), shapes (n_train,
            n_test, seed), pointers (n_train, n_test, hops, objects, seed), arrows (n_train, n_test, steps,
            colours, two_cycles, seed; the labels are (steps, 64) per image), imagenette (size="160px"
            or "320px"), imagenet100 (class_list=path).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {DATASETS}")
    builder = _BUILDERS[name]
    accepted = list(inspect.signature(builder).parameters)[3:]
    if unknown := sorted(set(options) - set(accepted)):
        raise ValueError(f"{name} does not take option(s) {unknown}; its options are {accepted or 'none'}")
    root = Path(root) if root is not None else default_data_dir()
    return builder(root, download, img_size, **options)


__all__ = [
    "DATASETS",
    "DataSpec",
    "DatasetUnavailable",
    "EpochBatchSampler",
    "EpochSeededDataset",
    "build_transform",
    "default_data_dir",
    "load_dataset",
    "make_loader",
]
