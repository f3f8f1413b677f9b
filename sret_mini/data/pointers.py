"""`pointers`: a generated laboratory in which the answer takes a fixed number of steps of computation.

An image is a grid of 4 x 4 cells of `cell` pixels. `objects` cells (6 by default), drawn at random,
hold an *object*: a square ring of its own colour with a *pointer* inside, a 2 x 2 dot of another
object's colour. Every colour is used by one object only. From the red object the pointers form a
chain of `hops` steps through distinct objects; every other pointer (the chain's last one included)
names a random object other than its own. The label is the colour reached from red after `hops` steps:

    label = colour(next(next(...next(red))))        (`hops` times; next = the object a dot names)

One step is read inside the red object (its dot). Every further step is a *lookup*: find the
object whose ring has the colour of the dot just read. So `hops` steps want `hops - 1` lookups,
which a transformer does with attention. One application of attention reaches three steps at
most (the red token looks up the object after the next; the next object, seeing that red points
at it, looks up the one two steps on), so `hops = 4` wants two applications. The chain is not a
cycle on purpose: in a cycle, looking backwards from red would reach the answer too.

The dataset is a pure function of (seed, index): any size, no files, the same images on every machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

LOW, HIGH = 80, 240
#: the eight colours an object can take (the corners of the RGB cube at two levels), red first: the chain starts there
COLOURS = {
    "red": (HIGH, LOW, LOW), "green": (LOW, HIGH, LOW), "blue": (LOW, LOW, HIGH), "yellow": (HIGH, HIGH, LOW),
    "magenta": (HIGH, LOW, HIGH), "cyan": (LOW, HIGH, HIGH), "white": (HIGH, HIGH, HIGH), "grey": (LOW, LOW, LOW),
}  # fmt: skip
CLASSES = tuple(COLOURS)
GRID = 4  # cells per side


class PointersDataset(Dataset):
    """`n` seeded images; item i is (PIL image, label), label = index of the colour `hops` steps from red.

    Args:
        n: number of images.
        hops: pointer steps from the red object to the object whose colour is the label (1 to objects - 1).
        objects: objects per image (hops + 1 to 8), with the first `objects` colours of `COLOURS`.
        cell: pixels per cell side (>= 4); the image is 4 * cell pixels square.
        seed: the images are a function of (seed, index).
        transform: applied to the PIL image.
    """

    classes = CLASSES

    def __init__(self, n: int = 4000, hops: int = 4, objects: int = 6, cell: int = 4, seed: int = 0, transform=None):
        checks = (("n", n, 1, None), ("objects", objects, 2, len(COLOURS)), ("cell", cell, 4, None))
        ok = isinstance(objects, (int, np.integer)) and 2 <= objects <= len(COLOURS)
        for name, value, low, high in (*checks, ("hops", hops, 1, objects - 1 if ok else None)):
            if not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
                bound = f"from {low} to {high}" if high else f">= {low}"
                raise ValueError(f"{name}={value!r}: must be an integer {bound}")
        self.n, self.hops, self.objects, self.cell, self.seed, self.transform = n, hops, objects, cell, seed, transform
        self.img_size = GRID * cell
        self.targets = [self.describe(i)["label"] for i in range(n)]

    def __len__(self) -> int:
        return self.n

    def describe(self, i: int) -> dict:
        """The plan of image i.

        `cells[k]`: the raster-order cell (row * 4 + column) of the object of colour k;
        `pointer[k]`: the colour its dot shows; `path`: the colours from red, `hops` steps on (distinct);
        `label`: the last colour of the path.
        """
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} images")
        rng = np.random.default_rng((self.seed, i))
        k = self.objects
        path = [0, *(1 + rng.permutation(k - 1)[: self.hops]).tolist()]  # red, then `hops` other colours
        pointer = (np.arange(k) + 1 + rng.integers(k - 1, size=k)) % k  # anywhere but at itself
        pointer[path[:-1]] = path[1:]  # the chain from red; its end and the others point at random
        cells = rng.choice(GRID * GRID, size=k, replace=False)
        return dict(cells=cells, pointer=pointer, path=path, label=path[-1])

    def render(self, plan: dict) -> Image.Image:
        """The image of a plan: a ring of its own colour around a dot of its target's colour, per object."""
        c, palette = self.cell, np.array(list(COLOURS.values()), dtype=np.uint8)
        pixels = np.zeros((GRID * c, GRID * c, 3), dtype=np.uint8)  # black background
        inner = slice(c // 2 - 1, c // 2 + 1)  # the 2 x 2 dot at the cell's centre
        for colour, (cell, target) in enumerate(zip(plan["cells"], plan["pointer"])):
            y, x = divmod(int(cell), GRID)
            patch = pixels[y * c : (y + 1) * c, x * c : (x + 1) * c]
            patch[:] = palette[colour]
            patch[inner, inner] = palette[target]
        return Image.fromarray(pixels, "RGB")

    def __getitem__(self, i: int):
        plan = self.describe(i)
        image = self.render(plan)
        return (self.transform(image) if self.transform else image), plan["label"]
