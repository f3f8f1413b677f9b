"""The `shapes` laboratory: seeded, balanced, and solvable only by attention that crosses the halves."""

import numpy as np
import pytest

from sret_mini import TrainConfig, train
from sret_mini.data import load_dataset
from sret_mini.data.shapes import COLOURS, ShapesDataset, lab_model_kwargs


def test_the_same_seed_and_index_give_the_same_image():
    a, b = ShapesDataset(50, 32, seed=7), ShapesDataset(50, 32, seed=7)
    for i in (0, 13, 49):
        assert np.array_equal(np.asarray(a[i][0]), np.asarray(b[i][0])) and a[i][1] == b[i][1]
    assert not np.array_equal(np.asarray(a[0][0]), np.asarray(ShapesDataset(50, 32, seed=8)[0][0]))


def test_labels_are_balanced_and_say_whether_the_colours_match():
    data = ShapesDataset(2000, 32, seed=0)
    assert 0.45 < np.mean(data.targets) < 0.55
    for i in range(40):
        label, top, bottom = data.describe(i)
        assert top in COLOURS and bottom in COLOURS and label == int(top == bottom)


def test_each_colour_alone_says_nothing_about_the_label():
    data = ShapesDataset(4000, 32, seed=0)
    for colour in COLOURS:
        labels = [label for label, top, _ in map(data.describe, range(4000)) if top == colour]
        assert 0.4 < np.mean(labels) < 0.6  # a matching bottom half the time, whatever the top


@pytest.mark.parametrize("size", [16, 32, 64])
def test_the_band_around_the_midline_holds_no_object(size):
    data = ShapesDataset(30, size, seed=1)
    gap = size // 4
    for i in range(30):
        image = np.asarray(data[i][0]).astype(int)
        band = image[size // 2 - gap + 1 : size // 2 + gap - 1]  # away from the objects' anti-aliased edges
        background = image[0, 0]
        assert np.abs(band - background).max() <= 2, i


def test_any_size_and_count():
    spec = load_dataset("shapes", img_size=48, n_train=10, n_test=4, seed=3)
    assert (len(spec.train), len(spec.test)) == (10, 4) and spec.train[9][0].size == (48, 48)
    with pytest.raises(ValueError, match="too small"):
        ShapesDataset(10, img_size=4)


def test_attention_confined_to_slices_stays_near_chance_while_global_attention_learns():
    def accuracy(attention):
        result = train(TrainConfig(
            model="sret_nano", model_kwargs=lab_model_kwargs(attention), dataset="shapes",
            dataset_options=dict(n_train=6000, n_test=500), img_size=32, epochs=3, batch_size=64, lr=1e-3,
            warmup_epochs=0.5, label_smoothing=0.0, progress=False,
        ))  # fmt: skip
        return result.history[-1]["test_top1"]

    assert accuracy("global") > 85
    assert accuracy("sliced") < 60
