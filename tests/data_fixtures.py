"""Small datasets written in the real on-disk formats, for testing the loaders offline."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

IMAGENETTE_WNIDS = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
                    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"]  # fmt: skip


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_cifar(root: Path, name: str, n_per_file: int = 6, seed: int = 0) -> dict:
    """CIFAR-10 or -100 in torchvision's python-pickle layout; returns the MD5 lists to patch in.

    Layout (as in the official archives): cifar-10-batches-py/{data_batch_1..5, test_batch,
    batches.meta}, cifar-100-python/{train, test, meta}; each batch a pickled dict with 'data'
    (N x 3072 uint8, channel-major) and 'labels' / 'fine_labels'.
    """
    rng = np.random.default_rng(seed)
    ten = name == "cifar10"
    folder = Path(root) / ("cifar-10-batches-py" if ten else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    num_classes, label_key = (10, "labels") if ten else (100, "fine_labels")
    files = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if ten else (["train"], ["test"])
    written = {"train": [], "test": [], "images": {}}
    for split, names in zip(("train", "test"), files):
        for fname in names:
            data = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, num_classes, n_per_file)]
            with open(folder / fname, "wb") as f:
                pickle.dump({"data": data, label_key: labels, "batch_label": fname}, f)
            written[split].append([fname, md5(folder / fname)])
            written["images"].setdefault(split, []).append((data, labels))
    meta_name, meta_key = ("batches.meta", "label_names") if ten else ("meta", "fine_label_names")
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"class_{i}" for i in range(num_classes)]}, f)
    written["meta"] = {"filename": meta_name, "key": meta_key, "md5": md5(folder / meta_name)}
    return written


def write_image_folder(root: Path, classes: list[str], per_class: int = 2, size: int = 40, ext: str = "JPEG") -> None:
    """root/<class>/<i>.<ext> random RGB images."""
    rng = np.random.default_rng(0)
    for c in classes:
        (Path(root) / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(Path(root) / c / f"{c}_{i}.{ext}")


def write_imagenette(root: Path, size: str = "160px") -> Path:
    """imagenette2-160/{train,val}/<wnid>/*.JPEG with the ten real WordNet ids."""
    base = Path(root) / f"imagenette2-{size[:-2]}"
    for split in ("train", "val"):
        write_image_folder(base / split, IMAGENETTE_WNIDS, per_class=1)
    return base
