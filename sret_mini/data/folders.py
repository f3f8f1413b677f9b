"""Image folders: Imagenette, any ImageNet-style folder, and an ImageNet-100 subset of ImageNet.

All three read `<root>/train/<class>/*.jpg` and `<root>/val/<class>/*.jpg` (torchvision's
ImageFolder layout). ImageNet's own validation images must be sorted into class folders first
(the usual ILSVRC preparation); the dataset cannot be downloaded automatically (its terms of
access require registration at https://image-net.org).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder, Imagenette

from .download import DatasetUnavailable, fetch_or_explain, missing

IMAGENETTE_SIZES = {"160px": "fast.ai's 160 px archive", "320px": "fast.ai's 320 px archive"}
# shipped inside the package (package data), so that a pip-installed sret_mini has it too
IMAGENET100_LIST = Path(__file__).resolve().parent / "imagenet100_classes.txt"


def imagenette_splits(root: Path, size: str = "160px", download: bool = True):
    """(train, val) Imagenette (fast.ai's 10 easy ImageNet classes) at the 160 px or 320 px size."""
    if size not in IMAGENETTE_SIZES:
        raise ValueError(f"imagenette size={size!r}: choose one of {list(IMAGENETTE_SIZES)}")
    expected = Path(root) / f"imagenette2-{size[:-2]}"
    option = f"--size {size}"  # sret-mini download imagenette --size 320px
    if not expected.is_dir():
        if not download:
            raise missing("imagenette", expected, Path(root), IMAGENETTE_SIZES[size], option)
        fetch_or_explain("imagenette", expected, Path(root), lambda: Imagenette(str(root), size=size, download=True),
                         IMAGENETTE_SIZES[size], option)  # fmt: skip
    return (Imagenette(str(root), split="train", size=size, loader=open_image),
            Imagenette(str(root), split="val", size=size, loader=open_image))  # fmt: skip


def open_image(path: str) -> Image.Image:
    """An image file as RGB; a file that is no image (or a damaged one) is named in the error."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:  # SyntaxError: Pillow's "broken PNG file"
        raise ValueError(f"{path} is not a readable image ({e}): remove it from the folder or replace it") from e


def _split_dirs(root: Path, name: str) -> tuple[Path, Path]:
    train, val = Path(root) / "train", Path(root) / "val"
    for d in (train, val):
        if not d.is_dir():
            raise DatasetUnavailable(
                f"{name}: expected a folder {d} holding one sub-folder of images per class "
                f"(the layout <root>/train/<class>/*.jpg and <root>/val/<class>/*.jpg)"
            )
    return train, val


def image_folder_splits(root: Path):
    """(train, val) ImageFolder datasets of an ImageNet-style folder."""
    train, val = _split_dirs(root, "imagefolder")
    return ImageFolder(str(train), loader=open_image), ImageFolder(str(val), loader=open_image)


def read_class_list(path: Path) -> list[str]:
    """Class folder names, one per line (lines starting with # are comments)."""
    lines = Path(path).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


class SubsetImageFolder(ImageFolder):
    """An ImageFolder that keeps only the listed classes, numbered in the list's sorted order."""

    def __init__(self, root: str, classes: list[str], **kwargs):
        self._keep = sorted(classes)
        super().__init__(root, **kwargs)

    def find_classes(self, directory: str):
        present = {p.name for p in Path(directory).iterdir() if p.is_dir()}
        absent = [c for c in self._keep if c not in present]
        if absent:
            raise DatasetUnavailable(
                f"{directory} lacks {len(absent)} of the {len(self._keep)} listed classes "
                f"(e.g. {absent[:3]}): point the ImageNet-100 loader at a full ImageNet folder"
            )
        return self._keep, {c: i for i, c in enumerate(self._keep)}


def imagenet100_splits(imagenet_root: Path, class_list: Path = IMAGENET100_LIST):
    """(train, val) of the 100-class subset of a local ImageNet, classes from `class_list`."""
    classes = read_class_list(class_list)
    train, val = _split_dirs(imagenet_root, "imagenet100")
    return (SubsetImageFolder(str(train), classes, loader=open_image),
            SubsetImageFolder(str(val), classes, loader=open_image))  # fmt: skip
