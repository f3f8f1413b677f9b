"""Every released variant has the authors' exact parameter count and their MAC count (within 0.5%)."""

import pytest
import timm
import torch

import sret_mini

from conftest import ROWS

rows = pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))


@rows
def test_parameter_count_equals_the_official_count(row):
    model = sret_mini.create_model(row["sret_mini_name"])
    assert sret_mini.count_params(model) == row["params"]


@rows
def test_mac_count_matches_the_official_count_within_half_a_percent(row):
    model = sret_mini.create_model(row["sret_mini_name"])
    macs = sret_mini.count_macs(model, row["input_size"])
    assert abs(macs / row["macs"] - 1) <= 0.005, (macs, row["macs"])


@rows
def test_variant_configuration_matches_the_official_table(row):
    cfg = sret_mini.VARIANTS[row["sret_mini_name"]]
    assert list(cfg.dims) == [b * h for b, h in zip(row["base_dims"], row["heads"])]
    assert list(cfg.heads) == row["heads"]
    assert list(cfg.depth) == row["depth"]
    assert list(cfg.unique_blocks) == row["unique_blocks"]
    assert list(cfg.groups_first) == row["groups_first"]
    assert list(cfg.groups_recursive) == row["groups_recursive"]
    assert cfg.mlp_ratio == row["mlp_ratio"] and cfg.nll_mlp_ratio == row["nll_mlp_ratio"]
    assert cfg.img_size == (row["input_size"], row["input_size"])


def test_counting_macs_leaves_the_model_untouched():
    model = sret_mini.create_model("sret_t", num_classes=10, img_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    sret_mini.count_macs(model)
    assert model.training
    assert all(v.device.type == "cpu" and torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_count_macs_follows_the_input_size():
    model = sret_mini.create_model("sret_t_noslice")
    # the stem, projections and MLPs grow with the pixels; attention grows faster
    assert sret_mini.count_macs(model, 448) > 4 * sret_mini.count_macs(model, 224)


@pytest.mark.parametrize("name, gmacs", [("deit_tiny_patch16_224", 1.26), ("pit_ti_224", 0.70)])
def test_count_macs_works_for_other_timm_models(name, gmacs):
    # at 224 px, timm's benchmark tables list 1.26 GMACs for DeiT-Tiny and 0.70 for PiT-Ti
    assert abs(sret_mini.count_macs(timm.create_model(name)) / (gmacs * 1e9) - 1) < 0.01


def test_loops_add_one_nll_per_application_and_no_block_weights():
    one = sret_mini.create_model("sret_t", loops=1)
    three = sret_mini.create_model("sret_t", loops=3)
    nll_size = [sret_mini.count_params(stage.nlls[0]) for stage in three.stages]
    # two more applications of every shared block: two more NLLs each, the block itself shared
    expected = sum(n * u * 2 for n, u in zip(nll_size, three.cfg.unique_blocks))
    assert sret_mini.count_params(three) - sret_mini.count_params(one) == expected
