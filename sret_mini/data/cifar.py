"""CIFAR-10 and CIFAR-100 through torchvision, downloaded into the data folder on first use.

torchvision fetches the python-pickle archives from the authors' site
(https://www.cs.toronto.edu/~kriz/cifar.html), checks the archive's MD5 and the MD5 of every
extracted batch file before reading it. 50,000 training and 10,000 test images of 32x32 px.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import CIFAR10, CIFAR100

from .download import fetch_or_explain, missing

CLASSES = {"cifar10": CIFAR10, "cifar100": CIFAR100}
ARCHIVE_SIZE = {"cifar10": "163 MB", "cifar100": "161 MB"}


def cifar_splits(name: str, root: Path, download: bool = True):
    """(train, test) torchvision datasets of `name` ('cifar10' or 'cifar100') under `root`."""
    cls = CLASSES[name]
    expected = Path(root) / cls.base_folder
    try:
        return cls(str(root), train=True), cls(str(root), train=False)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted" (files absent or MD5 wrong)
        if not download:
            raise missing(name, expected, Path(root), ARCHIVE_SIZE[name]) from None
    fetch_or_explain(name, expected, Path(root), lambda: cls(str(root), train=True, download=True), ARCHIVE_SIZE[name])
    return cls(str(root), train=True), cls(str(root), train=False)
