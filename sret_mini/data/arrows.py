"""`arrows`: a generated laboratory in which k steps of the answer take k applications of one local step.

An image is an 8 x 8 torus of cells (the edges wrap around), 4 x 4 pixels each, so 32 x 32 pixels
and one token per cell for a model with a stride-4 stem. Every cell has a *colour* (one of the
first `colours` of `COLOURS`) and an *arrow* to one of its four neighbours (up, right, down, left;
from the top row "up" leads to the bottom row). A cell is filled with its colour and carries a
black 2-pixel mark in the middle of the edge its arrow points to::

    up      right   down    left        (c: the cell's colour, #: the mark)
    c##c    cccc    cccc    cccc
    cccc    ccc#    cccc    #ccc
    cccc    ccc#    cccc    #ccc
    cccc    cccc    c##c    cccc

so a cell's colour (its centre pixels) and its arrow (the dark edge) are read from its own 16
pixels alone. The labels are dense, one per cell and per step: for step t = 1, 2, ..., every cell's
label is the colour of the cell reached by following t arrows from it:

    label[t][cell] = colour(next(next(...next(cell))))        (t times; next = the arrow's cell)

Step t + 1 is step t read one arrow further on (label[t + 1][cell] = label[t][next(cell)]), so
one application of a block that moves every cell's answer one arrow along solves one more step:
k steps want k applications. Longer chains are harder instances at the same image size: evaluate
steps beyond the ones trained on with more applications.

Two neighbours never point at each other (unless `two_cycles=True`): with arrows drawn
independently a quarter of the arrows would point straight back, most chains would fall into such
a 2-cycle within a few steps, and "your own colour at even steps" would already be right 44% of
the time at step 2 (4 colours), 46% at step 16. Without 2-cycles a cell's own colour is right by
chance only (1 / colours) at steps 1 to 3. The shortest cycles are then the 2 x 2 squares, which
most chains end in: from t = 8 on, the colour t - 4 steps on is still the answer at step t about
half of the time (4 colours).

What a convolutional stem already sees: SReT's stride-4 stem (three 3 x 3 convolutions) gives
each token a field of 15 x 15 pixels, its own cell and the whole of its eight neighbours. So it can
answer step 1 from the pixels alone, and step 2 where the two arrows turn (to a diagonal cell),
except across the wrapped edges, where it sees zero padding: 1 arrow in 8 crosses an edge. Steps
beyond need attention.

The dataset is a pure function of (seed, index): any size, no files, the same images on every machine.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

#: the colours a cell can take (well apart in RGB and from the black mark); the first `colours` are used
COLOURS = {
    "red": (230, 60, 60), "green": (60, 200, 60), "blue": (70, 110, 255),
    "yellow": (240, 220, 50), "magenta": (220, 80, 220), "cyan": (60, 210, 220),
}  # fmt: skip
MARK = (0, 0, 0)  # the arrow's mark
#: arrow directions and their (row, column) steps on the torus
DIRECTIONS = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1)}
GRID = 8  # cells per side
CELL = 4  # pixels per cell side
IMG_SIZE = GRID * CELL
#: the two pixels (row, column) inside a cell that the mark of each direction blackens
MARK_PIXELS = {
    "up": ((0, 1), (0, 2)), "right": ((1, 3), (2, 3)), "down": ((3, 1), (3, 2)), "left": ((1, 0), (2, 0)),
}  # fmt: skip

_MARKS = np.zeros((len(DIRECTIONS), CELL, CELL), dtype=bool)  # (direction, y, x)
for _d, _pixels in enumerate(MARK_PIXELS.values()):
    _MARKS[(_d, *zip(*_pixels))] = True


def neighbours() -> np.ndarray:
    """(64, 4) raster index of the neighbour of every cell in every direction (wrapping)."""
    rows, cols = np.divmod(np.arange(GRID * GRID), GRID)
    return np.stack([(rows + dy) % GRID * GRID + (cols + dx) % GRID for dy, dx in DIRECTIONS.values()], axis=1)


def follow(colour: np.ndarray, target: np.ndarray, steps: int) -> np.ndarray:
    """(steps, 64) labels: row t - 1 is the colour `t` arrows on from every cell.

    `colour`: (64,) colour of every cell; `target`: (64,) raster index of the cell its arrow points to.
    """
    labels, reached = np.empty((steps, len(colour)), dtype=np.int64), np.arange(len(colour))
    for t in range(steps):
        reached = target[reached]  # one arrow further on
        labels[t] = colour[reached]
    return labels


def _check(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high and value > high):
        bound = f"from {low} to {high}" if high else f">= {low}"
        raise ValueError(f"{name}={value!r}: must be an integer {bound}")
    return int(value)


class ArrowsDataset(Dataset):
    """`n` seeded 32 x 32 images; item i is (PIL image, labels) with labels a LongTensor.

    labels[t - 1, cell] is the colour index reached from `cell` (raster order, row * 8 + column)
    after t arrows, for t = 1 .. steps: shape (steps, 64), a target for every application
    (deep supervision). With `step` set, labels is that step's row only: shape (64,).

    Args:
        n: number of images.
        steps: the steps labelled, 1 .. steps (ask for more than you train on to test longer chains).
        colours: colours in use (2 to 6), the first ones of `COLOURS`.
        step: give only this step's labels (1 .. steps), or None for all of them.
        two_cycles: let two neighbours point at each other (False: arrows pointing straight back
            at a cell that points at them are drawn again, see the module docstring).
        seed: the images are a function of (seed, index).
        transform: applied to the PIL image.

    Example:
        >>> data = ArrowsDataset(100, steps=16, colours=4)
        >>> image, labels = data[0]
        >>> image.size, labels.shape
        ((32, 32), torch.Size([16, 64]))
    """

    def __init__(self, n: int = 4000, steps: int = 4, colours: int = 4, step: int | None = None,
                 two_cycles: bool = False, seed: int = 0, transform=None):  # fmt: skip
        self.n = _check("n", n, 1)
        self.steps = _check("steps", steps, 1)
        self.colours = _check("colours", colours, 2, len(COLOURS))
        self.step = None if step is None else _check("step", step, 1, self.steps)
        if not isinstance(two_cycles, bool):
            raise ValueError(f"two_cycles={two_cycles!r}: must be True or False")
        self.two_cycles, self.seed, self.transform = two_cycles, seed, transform
        self.img_size = IMG_SIZE
        self.classes = tuple(COLOURS)[: self.colours]

    def __len__(self) -> int:
        return self.n

    def describe(self, i: int) -> dict:
        """The hidden structure of image i.

        `colour`: (64,) colour index of every cell; `arrow`: (64,) direction index into `DIRECTIONS`;
        `target`: (64,) raster index of the cell each arrow points to; `labels`: (steps, 64), see
        `follow`.
        """
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for {self.n} images")
        rng = np.random.default_rng((self.seed, i))
        cells, neighbour = np.arange(GRID * GRID), neighbours()  # neighbour[cell, direction]
        colour = rng.integers(self.colours, size=GRID * GRID)
        arrow = rng.integers(len(DIRECTIONS), size=GRID * GRID)
        target = neighbour[cells, arrow]
        while not self.two_cycles and (mutual := target[target] == cells).any():
            # both cells of every 2-cycle draw again (always one, and a cell whose other neighbours
            # all point at it would never get out); about 4 rounds on average
            arrow[mutual] = rng.integers(len(DIRECTIONS), size=mutual.sum())
            target = neighbour[cells, arrow]
        return dict(colour=colour, arrow=arrow, target=target, labels=follow(colour, target, self.steps))

    def render(self, plan: dict) -> Image.Image:
        """The image of a plan: every cell filled with its colour, a black mark on the edge its arrow points to."""
        palette = np.array(list(COLOURS.values()), dtype=np.uint8)
        marked = _MARKS[plan["arrow"]][..., None]  # (64, 4, 4, 1): True on the mark's pixels
        cells = np.where(marked, np.array(MARK, dtype=np.uint8), palette[plan["colour"]][:, None, None])
        # (row, column, y, x, rgb) cells -> (row * 4 + y, column * 4 + x, rgb) pixels
        pixels = cells.reshape(GRID, GRID, CELL, CELL, 3).transpose(0, 2, 1, 3, 4).reshape(IMG_SIZE, IMG_SIZE, 3)
        return Image.fromarray(np.ascontiguousarray(pixels), "RGB")

    def __getitem__(self, i: int):
        plan = self.describe(i)
        image = self.render(plan)
        labels = torch.from_numpy(plan["labels"])  # (steps, 64)
        if self.step is not None:
            labels = labels[self.step - 1]
        return (self.transform(image) if self.transform else image), labels
