"""`shapes`: a generated laboratory for sliced attention.

Every image holds two objects, one in the top half and one in the bottom half. Each is a random
shape (circle, square, triangle, cross) of random size and position, painted in one of four
colours. The label is the *relation* between the two: 1 if they have the same colour, 0 if not
(balanced classes). Shape, size and position are nuisances.

One object alone says nothing about the label: whatever the top colour is, the bottom one matches
it half the time. A model whose attention stays inside contiguous slices of raster-ordered tokens
(top band / bottom band) never lets the two objects meet, so it stays near chance; global
attention, or a recursive pass that mixes the bands, lets them meet and solves it.

(The colour relation is learnt in a few epochs; "same shape" is learnt too, but only after a long
plateau, which is too slow for a chapter that runs on a laptop CPU.)

The dataset is a pure function of (seed, index): any size, any resolution, no files, the same
images on every machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {"red": (230, 60, 60), "green": (60, 200, 60), "blue": (70, 110, 255), "yellow": (240, 220, 50)}
CLASSES = ("different colours", "same colour")


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, colour: tuple) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:  # cross
        w = max(1.0, r / 2.5)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)


def render(img_size: int, top: str, bottom: str, rng: np.random.Generator) -> Image.Image:
    """Draw an object of colour `top` in the top half and one of colour `bottom` in the bottom half.

    Shapes are drawn at 4x resolution and downsampled, so they stay recognisable at 16 px.
    """
    scale = 4
    s = img_size * scale
    background = tuple(int(v) for v in rng.integers(0, 40, 3))
    image = Image.new("RGB", (s, s), background)
    draw = ImageDraw.Draw(image)
    # Objects stay a quarter of the image away from the midline (8 px at 32 px). The laboratory's
    # stride-8 stem gives token row k a field of pixel rows 8k-7 .. 8k+7: at 32 px the first row
    # below the midline (k = 2) sees rows 9..23 and the last one above it (k = 1) rows 1..15, so no
    # token reaches into the other object's band (rows below 8 / from 24). A stride-4 stem would
    # not do: its row k = 4 sees rows 9..23 too, but row 3 sees 5..19, and the bands are closer.
    border, gap = s / 32, s / 4
    for colour, (y0, y1) in ((top, (border, s / 2 - gap)), (bottom, (s / 2 + gap, s - border))):
        r = rng.uniform(s / 14, s / 9.5)
        cx = rng.uniform(border + r, s - border - r)
        cy = rng.uniform(y0 + r, y1 - r)
        _draw(draw, SHAPES[rng.integers(0, len(SHAPES))], cx, cy, r, COLOURS[colour])
    return image.resize((img_size, img_size), Image.Resampling.BOX)


class ShapesDataset(Dataset):
    """`n` seeded images of size `img_size`; item i is (PIL image, label) with label 1 = same colour."""

    classes = CLASSES

    def __init__(self, n: int = 4000, img_size: int = 32, seed: int = 0, transform=None):
        if img_size < 8:
            raise ValueError(f"img_size={img_size} is too small to draw two shapes; use 8 or more")
        if n < 1:
            raise ValueError(f"n={n}: the dataset needs at least one image")
        self.n, self.img_size, self.seed, self.transform = n, img_size, seed, transform
        self.targets = [self.describe(i)[0] for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def describe(self, i: int) -> tuple[int, str, str]:
        """(label, top colour, bottom colour) of image i."""
        label, top, bottom, _ = self._draw_plan(i)
        return label, top, bottom

    def _draw_plan(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} images")
        rng = np.random.default_rng((self.seed, i))
        names = list(COLOURS)
        label = int(rng.integers(0, 2))
        top = names[rng.integers(0, len(names))]
        bottom = top if label else names[(names.index(top) + rng.integers(1, len(names))) % len(names)]
        return label, top, bottom, rng

    def __getitem__(self, i: int):
        label, top, bottom, rng = self._draw_plan(i)
        image = render(self.img_size, top, bottom, rng)
        return (self.transform(image) if self.transform else image), label


# The laboratory's model: one stage of 4x4 tokens (a stride-8 stem on 32 px images), 2 shared
# blocks applied twice. With 2 groups, a group is exactly the top or the bottom half of the image.
# (One stage, so no pooling between stages mixes the halves; the stem's 15-pixel receptive field
# cannot bridge the gap between the objects' bands.)
LAB_ATTENTION = {
    "global": dict(groups_first=(1,), groups_recursive=(1,), shuffle="none"),
    "sliced": dict(groups_first=(2,), groups_recursive=(2,), shuffle="none"),
    "sliced, permuted recursion": dict(groups_first=(2,), groups_recursive=(2,), shuffle="train"),
    "sliced, global recursion": dict(groups_first=(2,), groups_recursive=(1,), shuffle="none"),
}


def lab_model_kwargs(attention: str) -> dict:
    """SReT options of the laboratory model with the given attention (a key of LAB_ATTENTION).

    Example: ``create_model("sret_nano", img_size=32, num_classes=2, **lab_model_kwargs("sliced"))``.
    """
    if attention not in LAB_ATTENTION:
        raise ValueError(f"attention={attention!r}: choose one of {list(LAB_ATTENTION)}")
    return dict(dims=(64,), heads=(2,), depth=(4,), unique_blocks=(2,), mlp_ratio=2.0, nll_mlp_ratio=1.0,
                stem_stride=8, **LAB_ATTENTION[attention])  # fmt: skip
