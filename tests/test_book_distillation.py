"""The distillation chapter's helpers: a bank made for a dataset, the cost of a run, bytes per crop."""

import pytest
import torch
from torch import nn

from sret_mini.book import distillation
from sret_mini.data import load_dataset
from sret_mini.distill.softlabels import SoftLabelBank


def test_crop_bytes_counts_the_box_the_flip_and_k_probabilities():
    assert distillation.crop_bytes(1) == 4 * 2 + 1 + 2 + 2
    assert distillation.crop_bytes(10) - distillation.crop_bytes(3) == 7 * 4


def test_a_bank_for_a_dataset_records_its_crop_distribution_and_size(tmp_path):
    spec = load_dataset("digits", train_per_class=1)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10))
    path = distillation.make_bank_for(teacher, spec, tmp_path / "b.safetensors", teacher_name="t", crops=2, topk=3)
    bank = SoftLabelBank(path)
    assert bank.info["num_images"] == 10 and bank.info["crops"] == 2 and bank.info["topk"] == 3
    assert tuple(bank.info["scale"]) == spec.augment["scale"] and bank.info["hflip"] == spec.augment["hflip"]
    assert bank.crops(0)[0].shape == (2, 4)


def test_the_stored_crop_format_matches_crop_bytes(tmp_path):
    spec = load_dataset("digits", train_per_class=1)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10))
    bank = SoftLabelBank(distillation.make_bank_for(teacher, spec, tmp_path / "b.safetensors", teacher_name="t",
                                                    crops=1, topk=4))  # fmt: skip
    stored = sum(t[0].numel() * t.element_size() for t in bank.crops(0))
    assert stored == distillation.crop_bytes(4)


def test_seconds_per_epoch_is_the_median_over_epochs_and_runs():
    runs = [[{"images_per_s": 100.0}, {"images_per_s": 50.0}], [{"images_per_s": 25.0}]]
    assert distillation.seconds_per_epoch(runs, images_per_epoch=100) == 2.0
    with pytest.raises(ValueError, match="no epochs"):
        distillation.seconds_per_epoch([[]], 100)


def test_plot_replay_draws_every_crop_with_its_labels():
    import matplotlib

    matplotlib.use("Agg")
    spec = load_dataset("digits", train_per_class=1)
    image = spec.train[0][0]
    views, boxes = torch.zeros(3, 3, 16, 16), torch.tensor([[0, 0, 16, 16]] * 3)
    labels = {"a": torch.full((3, 10), 0.1), "b": torch.full((3, 10), 0.1)}
    fig = distillation.plot_replay(image, views, boxes, labels, spec.classes, spec.mean, spec.std)
    assert len(fig.axes) == 2 * 4
