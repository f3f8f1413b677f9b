"""The digits' training-split options: a small labelled set (`train_per_class`), wrong labels (`train_label_noise`)."""

import numpy as np
import pytest

from sret_mini.data import load_dataset
from sret_mini.data.digits import first_per_class


def test_train_per_class_keeps_that_many_images_of_every_digit():
    spec = load_dataset("digits", train_per_class=7)
    assert len(spec.train) == 70
    assert np.bincount(spec.train.targets).tolist() == [7] * 10


def test_train_per_class_leaves_the_test_split_alone():
    assert load_dataset("digits", train_per_class=3).test.targets == load_dataset("digits").test.targets


def test_the_kept_images_are_the_first_of_each_class_in_order():
    labels = np.array([1, 0, 1, 1, 0, 2])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 4, 5]


def test_a_smaller_labelled_set_is_part_of_a_larger_one():
    small, large = load_dataset("digits", train_per_class=2).train, load_dataset("digits", train_per_class=5).train
    large_images = {im.tobytes() for im in large.images}
    assert all(im.tobytes() in large_images for im in small.images)


def test_train_per_class_must_keep_an_image():
    with pytest.raises(ValueError, match="at least one image"):
        load_dataset("digits", train_per_class=0)


def test_label_noise_makes_that_fraction_of_training_labels_wrong():
    spec = load_dataset("digits", train_per_class=10, train_label_noise=0.3)
    wrong = [a != b for a, b in zip(spec.train.targets, spec.train.clean_targets)]
    assert sum(wrong) == 30


def test_label_noise_is_the_same_in_every_load_and_spares_the_test_split():
    a, b = (load_dataset("digits", train_label_noise=0.2) for _ in range(2))
    assert a.train.targets == b.train.targets
    assert a.test.targets == load_dataset("digits").test.targets


def test_label_noise_must_be_a_fraction():
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_dataset("digits", train_label_noise=1.5)
