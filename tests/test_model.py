"""timm creation and timm's model contract for every registered name; shapes; other input sizes."""

import pytest
import timm
import torch
from timm.models import group_parameters

import sret_mini
from sret_mini import SReT

from conftest import smallest_valid_size

NAMES = sret_mini.list_models()


def test_every_name_in_the_official_table_is_registered():
    names = {row["sret_mini_name"] for row in sret_mini.official_table()}
    assert names <= set(NAMES) and names <= set(timm.list_models("sret_*"))


@pytest.mark.parametrize("name", NAMES)
def test_timm_creates_the_variant_with_overrides_and_it_honours_the_contract(name):
    size = smallest_valid_size(sret_mini.VARIANTS[name])
    model = timm.create_model(name, num_classes=7, img_size=size, shuffle="none").eval()
    assert isinstance(model, SReT)
    assert model.cfg.img_size == (size, size) and model.cfg.shuffle == "none" and model.num_classes == 7
    assert model.pretrained_cfg["architecture"] == name

    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        logits = model.forward_head(feats)
        full = model(x)
    grid = model.cfg.grids()[-1]
    assert feats.shape == (2, model.num_features, *grid)
    assert pre.shape == (2, model.num_features) and logits.shape == (2, 7)
    torch.testing.assert_close(full, logits)
    assert model.get_classifier() is model.head

    names = {n for n, _ in model.named_parameters()}
    assert model.no_weight_decay() <= names
    groups = group_parameters(model, model.group_matcher())
    assert sorted(n for g in groups.values() for n in g) == sorted(names)  # every parameter in a group
    stride = model.cfg.stem_stride
    assert [f["reduction"] for f in model.feature_info] == [stride, 2 * stride, 4 * stride]

    model.reset_classifier(3)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, model.num_features)


def test_sret_mini_create_model_is_timms_call():
    a = sret_mini.create_model("sret_lt", num_classes=5, img_size=64, drop_path_rate=0.05)
    b = timm.create_model("sret_lt", num_classes=5, img_size=64, drop_path_rate=0.05)
    assert type(a) is type(b) and a.cfg == b.cfg


def test_timm_device_and_dtype_arguments_place_the_parameters():
    model = timm.create_model("sret_t", img_size=64, device="cpu", dtype=torch.float64)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model(torch.randn(1, 3, 64, 64, dtype=torch.float64)).dtype == torch.float64


def test_features_only_gives_the_three_stage_maps():
    model = timm.create_model("sret_t", features_only=True, img_size=64)
    maps = model(torch.randn(1, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2)]
    assert model.feature_info.reduction() == [8, 16, 32]


def test_forward_intermediates_returns_selected_stages():
    model = sret_mini.create_model("sret_t", img_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    last, maps = model.forward_intermediates(x, indices=[0, 2])
    assert [m.shape[1] for m in maps] == [64, 256]
    torch.testing.assert_close(last, model.forward_features(x))


def test_no_pooling_gives_one_prediction_per_token():
    model = sret_mini.create_model("sret_t", num_classes=4, img_size=64, global_pool="")
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4, 4)  # 2x2 tokens in the last stage


def test_input_of_another_size_uses_a_resized_position_embedding():
    model = sret_mini.create_model("sret_t_noslice", num_classes=3, img_size=64).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, 3) and model.pos_embed.shape[-2:] == (8, 8)


def test_small_stem_stride_keeps_more_tokens():
    model = sret_mini.SReT(img_size=32, stem_stride=2, groups_first=(8, 4, 1), num_classes=10)
    assert model.cfg.grids() == [(16, 16), (8, 8), (4, 4)]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_drop_path_grows_with_the_position_of_each_application():
    model = sret_mini.create_model("sret_t", drop_path_rate=0.1)
    rates = [r for stage in model.stages for r in stage.drop_path_rates]
    assert len(rates) == 20 and rates[0] == 0 and rates[-1] == pytest.approx(0.1)
    assert all(a < b for a, b in zip(rates, rates[1:]))  # two applications of a block differ


def test_the_model_trains_a_step():
    model = sret_mini.create_model("sret_t", num_classes=4, img_size=32, drop_path_rate=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
