"""The `pointers` laboratory: seeded, labelled by following the pointers, and refusing bad options."""

import numpy as np
import pytest

from sret_mini.book import recursion
from sret_mini.data import load_dataset
from sret_mini.data.pointers import COLOURS, GRID, PointersDataset
from sret_mini.flops import count_params
from sret_mini.registry import create_model


def test_the_same_seed_and_index_give_the_same_image():
    a, b = PointersDataset(30, seed=4), PointersDataset(30, seed=4)
    for i in (0, 7, 29):
        assert np.array_equal(np.asarray(a[i][0]), np.asarray(b[i][0])) and a[i][1] == b[i][1]
    assert not np.array_equal(np.asarray(a[0][0]), np.asarray(PointersDataset(30, seed=5)[0][0]))


def read_image(image, cell):
    """(ring colour -> dot colour) of every object, read back from the pixels alone."""
    palette = {v: k for k, v in enumerate(COLOURS.values())}
    pixels = np.asarray(image)
    links = {}
    for y in range(GRID):
        for x in range(GRID):
            patch = pixels[y * cell : (y + 1) * cell, x * cell : (x + 1) * cell]
            ring, dot = tuple(patch[0, 0]), tuple(patch[cell // 2, cell // 2])
            if ring != (0, 0, 0):
                links[palette[ring]] = palette[dot]
    return links


@pytest.mark.parametrize("hops, objects", [(1, 5), (3, 5), (4, 6), (7, 8)])
def test_the_label_is_the_colour_reached_by_following_the_dots_from_red(hops, objects):
    data = PointersDataset(40, hops=hops, objects=objects, cell=4, seed=2)
    for i in range(40):
        image, label = data[i]
        links = read_image(image, 4)
        assert sorted(links) == list(range(objects))  # every colour once
        colour = 0  # red
        for _ in range(hops):
            colour = links[colour]
        assert label == colour and label != 0


def test_the_chain_from_red_visits_distinct_objects_and_no_object_points_at_itself():
    data = PointersDataset(50, hops=4, objects=6, seed=0)
    for i in range(50):
        plan = data.describe(i)
        assert len(set(plan["path"])) == 5 and plan["path"][0] == 0
        assert all(plan["pointer"][c] != c for c in range(6))


def test_labels_cover_every_colour_but_red():
    labels = PointersDataset(2000, hops=4, objects=6, seed=0).targets
    counts = np.bincount(labels, minlength=len(COLOURS))
    assert counts[0] == 0 and counts[1:6].min() > 2000 / 5 * 0.8 and counts[6:].sum() == 0


def test_sizes_and_options_through_load_dataset():
    spec = load_dataset("pointers", img_size=32, n_train=12, n_test=5, hops=2, seed=1)
    assert (len(spec.train), len(spec.test), spec.num_classes, spec.img_size) == (12, 5, 8, 32)
    assert spec.train[0][0].size == (32, 32) and spec.train.hops == 2


@pytest.mark.parametrize("options, message", [
    (dict(hops=0), "hops=0"), (dict(hops=6), "hops=6"), (dict(objects=9), "objects=9"), (dict(n=0), "n=0"), (dict(cell=2), "cell=2"),
    (dict(hops=2.5), "hops=2.5"),
])  # fmt: skip
def test_bad_options_say_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        PointersDataset(**options)
    with pytest.raises(ValueError, match="does not take"):
        load_dataset("pointers", grid=5)


def test_the_three_arms_hold_the_same_parameters_to_within_a_percent():
    counts = {name: count_params(create_model("sret_nano", img_size=16, num_classes=8, **options))
              for name, options in recursion.lab_arms().items()}  # fmt: skip
    assert counts["single pass"] == counts["naive recursion"]
    assert abs(counts["SReT"] / counts["naive recursion"] - 1) < 0.01
    with pytest.raises(ValueError, match="mlp_ratio"):
        recursion.lab_arms(mlp_ratio=1.0, nll_mlp_ratio=0.5)


def test_train_arms_gives_one_value_per_seed_and_sret_has_coefficients_for_block_and_both_nlls():
    arms = recursion.lab_arms(dim=16, heads=1)
    results, models = recursion.train_arms(arms, [0, 1], dataset="pointers", epochs=1, batch_size=32,
                                           dataset_options=dict(n_train=64, n_test=32), warmup_epochs=0)  # fmt: skip
    assert {name: len(v) for name, v in results.items()} == {name: 2 for name in recursion.ARMS}
    values = recursion.coefficients(models["SReT"][0])
    assert len(values) == 8 and {"NLL 1.skip", "NLL 2.scale", "block.skip_attn"} <= set(values)
