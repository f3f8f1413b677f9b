"""The `arrows` laboratory: labels that follow the arrows drawn in the pixels, seeded, and refusing bad options."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sret_mini.data import DATASETS, EpochSeededDataset, load_dataset
from sret_mini.data.arrows import CELL, COLOURS, DIRECTIONS, GRID, MARK, ArrowsDataset


def read_image(image):
    """(colour, direction) of every cell in raster order, read back from the pixels alone."""
    palette = {v: k for k, v in enumerate(COLOURS.values())}
    pixels = np.asarray(image)
    # the middle pixel of each edge: dark where the arrow points
    edges = {"up": (0, 1), "right": (1, CELL - 1), "down": (CELL - 1, 1), "left": (1, 0)}
    colours, directions = [], []
    for y in range(GRID):
        for x in range(GRID):
            patch = pixels[y * CELL : (y + 1) * CELL, x * CELL : (x + 1) * CELL]
            colours.append(palette[tuple(patch[CELL // 2, CELL // 2])])
            marked = [name for name, (py, px) in edges.items() if tuple(patch[py, px]) == MARK]
            assert len(marked) == 1  # exactly one arrow per cell
            directions.append(marked[0])
    return colours, directions


def follow_pixels(colours, directions, steps):
    """(steps, 64) colours reached by walking the decoded arrows on the 8 x 8 torus."""
    labels = np.empty((steps, GRID * GRID), dtype=np.int64)
    for cell in range(GRID * GRID):
        y, x = divmod(cell, GRID)
        for t in range(steps):
            dy, dx = DIRECTIONS[directions[y * GRID + x]]
            y, x = (y + dy) % GRID, (x + dx) % GRID
            labels[t, cell] = colours[y * GRID + x]
    return labels


@pytest.mark.parametrize("seed, steps, colours, two_cycles", [
    (0, 1, 4, False), (3, 4, 4, False), (7, 16, 5, False), (11, 9, 2, False), (5, 6, 6, False), (2, 16, 4, True),
])  # fmt: skip
def test_the_labels_are_the_colours_reached_by_following_the_arrows_drawn_in_the_pixels(seed, steps, colours,
                                                                                      two_cycles):  # fmt: skip
    data = ArrowsDataset(12, steps=steps, colours=colours, two_cycles=two_cycles, seed=seed)
    for i in range(12):
        image, labels = data[i]
        decoded_colours, directions = read_image(image)
        assert max(decoded_colours) < colours
        assert np.array_equal(labels.numpy(), follow_pixels(decoded_colours, directions, steps))


def test_a_chosen_step_gives_that_row_of_the_labels():
    every, one = ArrowsDataset(5, steps=12, seed=1), ArrowsDataset(5, steps=12, step=12, seed=1)
    assert one[3][1].shape == (64,) and torch.equal(one[3][1], every[3][1][11])


def test_longer_chains_extend_the_shorter_ones():
    short, long = ArrowsDataset(5, steps=4, seed=2), ArrowsDataset(5, steps=16, seed=2)
    assert np.array_equal(np.asarray(short[4][0]), np.asarray(long[4][0]))  # the same image
    assert torch.equal(long[4][1][:4], short[4][1])


def test_the_same_seed_and_index_give_the_same_image_and_labels():
    a, b = ArrowsDataset(30, seed=4), ArrowsDataset(30, seed=4)
    for i in (0, 7, 29):
        assert np.array_equal(np.asarray(a[i][0]), np.asarray(b[i][0])) and torch.equal(a[i][1], b[i][1])


def test_different_seeds_and_indices_give_different_images():
    a, b = ArrowsDataset(30, seed=4), ArrowsDataset(30, seed=5)
    assert not np.array_equal(np.asarray(a[0][0]), np.asarray(b[0][0]))
    assert not np.array_equal(np.asarray(a[0][0]), np.asarray(a[1][0]))


def test_shapes_types_and_colours_in_use():
    data = ArrowsDataset(200, steps=3, colours=5, seed=0)
    image, labels = data[0]
    assert image.mode == "RGB" and image.size == (32, 32) and data.img_size == 32
    assert labels.dtype == torch.long and labels.shape == (3, 64)
    plan = data.describe(0)
    assert plan["colour"].shape == plan["arrow"].shape == plan["target"].shape == (64,)
    counts = np.bincount(np.concatenate([data.describe(i)["colour"] for i in range(200)]), minlength=len(COLOURS))
    assert counts[5:].sum() == 0 and counts[:5].min() > 200 * 64 / 5 * 0.9  # uniform over the 5 colours


def test_every_arrow_points_at_a_neighbour_on_the_torus():
    plan = ArrowsDataset(3, seed=0).describe(2)
    for cell, target in zip(range(64), plan["target"]):
        (y, x), (ty, tx) = divmod(cell, GRID), divmod(int(target), GRID)
        assert sorted(((ty - y) % GRID, (tx - x) % GRID)) in ([0, 1], [0, GRID - 1])


def test_no_two_neighbours_point_at_each_other_unless_asked():
    def mutual(data):
        plans = [data.describe(i) for i in range(100)]
        return np.mean([plan["target"][plan["target"]] == np.arange(64) for plan in plans])

    assert mutual(ArrowsDataset(100, seed=3)) == 0
    assert 0.2 < mutual(ArrowsDataset(100, two_cycles=True, seed=3)) < 0.3  # 1 in 4 with free arrows


@pytest.mark.parametrize("options, message", [
    (dict(n=0), "n=0"), (dict(steps=0), "steps=0"), (dict(steps=2.5), "steps=2.5"), (dict(colours=1), "colours=1"),
    (dict(colours=7), "colours=7"), (dict(step=5), "step=5"), (dict(step=0), "step=0"),
    (dict(two_cycles=1), "two_cycles=1"),
])  # fmt: skip
def test_bad_options_say_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        ArrowsDataset(**options)


def test_an_index_out_of_range_is_refused():
    with pytest.raises(IndexError, match="index 5"):
        ArrowsDataset(5).describe(5)


def test_load_dataset_gives_a_32_pixel_spec_without_augmentation():
    assert "arrows" in DATASETS
    spec = load_dataset("arrows", n_train=12, n_test=5, steps=6, colours=5, seed=1)
    assert (spec.name, len(spec.train), len(spec.test), spec.num_classes, spec.img_size) == ("arrows", 12, 5, 5, 32)
    assert spec.classes == list(COLOURS)[:5] and spec.augment == dict(augment=False)
    assert not np.array_equal(np.asarray(spec.train[0][0]), np.asarray(spec.test[0][0]))  # test images are others
    with pytest.raises(ValueError, match="does not take"):
        load_dataset("arrows", grid=5)
    with pytest.raises(ValueError, match="img_size=64"):
        load_dataset("arrows", img_size=64)


def test_the_evaluation_transform_keeps_every_pixel():
    spec = load_dataset("arrows", n_train=4, n_test=4)
    image, _ = spec.train[0]
    x = spec.transform(False, 32)(image)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    assert torch.allclose(x, (pixels - 0.5) / 0.5, atol=1e-6)


def test_a_dataloader_batch_holds_images_and_labels_for_every_step():
    spec = load_dataset("arrows", n_train=10, n_test=4, steps=5)
    data = EpochSeededDataset(spec.train, spec.transform(True, 32), random=False)
    images, labels = next(iter(DataLoader(data, batch_size=8)))
    assert images.shape == (8, 3, 32, 32) and labels.shape == (8, 5, 64) and labels.dtype == torch.long
