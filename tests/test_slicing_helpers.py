"""The helpers of the sliced-attention chapter (sret_mini.book.slicing)."""

from __future__ import annotations

import pytest
import torch

import sret_mini
from sret_mini.book import slicing
from sret_mini.data.shapes import LAB_ATTENTION


def test_group_of_raster_order_gives_contiguous_bands():
    assert slicing.group_of(torch.arange(8), 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_group_of_a_permutation_follows_each_token_to_its_slice():
    order = torch.tensor([3, 0, 2, 1])  # slice 0 holds tokens 3 and 0, slice 1 tokens 2 and 1
    assert slicing.group_of(order, 2).tolist() == [0, 1, 1, 0]


def test_group_of_refuses_groups_that_do_not_divide_the_tokens():
    with pytest.raises(ValueError, match="equal groups"):
        slicing.group_of(torch.arange(6), 4)


def test_stage_macs_add_up_to_the_stages_and_slicing_changes_only_attention_maps():
    sliced = slicing.stage_macs(sret_mini.create_model("sret_t"))
    plain = slicing.stage_macs(sret_mini.create_model("sret_t_noslice"))
    assert len(sliced) == len(plain) == 3
    for s, p in zip(sliced, plain):
        assert 0 < s["attention_maps"] <= s["macs"]
        assert p["macs"] - s["macs"] == p["attention_maps"] - s["attention_maps"]
    assert sliced[0]["attention_maps"] < plain[0]["attention_maps"]
    assert sliced[2] == plain[2]  # the third stage does not slice


@pytest.mark.parametrize("attention", list(LAB_ATTENTION))
def test_lab_config_differs_between_arms_only_in_the_attention(attention):
    cfg = slicing.lab_config(attention, seed=3, n_train=64, n_test=32, epochs=2)
    reference = slicing.lab_config("global", seed=3, n_train=64, n_test=32, epochs=2)
    assert cfg.model_kwargs.keys() == reference.model_kwargs.keys()
    differing = {k for k in cfg.model_kwargs if cfg.model_kwargs[k] != reference.model_kwargs[k]}
    assert differing <= {"groups_first", "groups_recursive", "shuffle"}
    assert (cfg.seed, cfg.epochs, cfg.dataset_options) == (3, 2, dict(n_train=64, n_test=32))


def test_lab_accuracy_trains_and_returns_a_percentage(tmp_path):
    cfg = slicing.lab_config("sliced", seed=0, n_train=32, n_test=16, epochs=1)
    first = slicing.lab_accuracy(cfg, tmp_path)
    assert 0 <= first <= 100
    assert any((tmp_path / "runs").iterdir())  # kept under the data folder
    assert slicing.lab_accuracy(cfg, tmp_path) == first  # reloaded, not trained again
