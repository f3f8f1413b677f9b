"""Checkpoint files: safe loading (weights_only), official files by every route, atomic writes."""

import os

import pytest
import timm
import torch

import sret_mini

from conftest import LISTINGS, random_official_state_dict


class Payload:
    """Any class instance: unpickling it means importing and running this project's code."""

    def __init__(self):
        self.note = "not weights"


@pytest.fixture
def official_file(tmp_path):
    """An official-style SReT-T checkpoint: a dict whose 'model' entry is the state dict."""
    path = tmp_path / "SReT_T.pth"
    sd = random_official_state_dict(next(p for p in LISTINGS if p.stem == "SReT_T"))
    torch.save({"model": sd, "epoch": 299}, path)
    return path, sd


def predictions(model, size=224):
    torch.manual_seed(0)
    with torch.no_grad():
        return model.eval()(torch.randn(2, 3, size, size))


def test_create_model_loads_an_official_file(official_file):
    path, sd = official_file
    model = sret_mini.create_model("sret_t", checkpoint_path=path)
    direct = sret_mini.create_model("sret_t")
    direct.load_state_dict(sret_mini.from_official(sd))
    assert torch.equal(predictions(model), predictions(direct))


def test_timm_pretrained_file_overlay_loads_an_official_file(official_file):
    path, _ = official_file
    via_timm = timm.create_model("sret_t", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    ours = sret_mini.create_model("sret_t", checkpoint_path=path)
    assert torch.equal(predictions(via_timm), predictions(ours))


def test_timm_checkpoint_path_loads_an_official_file(official_file):
    path, _ = official_file
    via_timm = timm.create_model("sret_t", checkpoint_path=str(path))
    ours = sret_mini.create_model("sret_t", checkpoint_path=path)
    assert torch.equal(predictions(via_timm), predictions(ours))



@pytest.mark.parametrize("route", ["sret_mini.create_model", "timm checkpoint_path", "timm pretrained file",
                                   "load_state_dict"])  # fmt: skip
def test_every_loading_route_converts_the_authors_file_once(official_file, route, monkeypatch):
    import sret_mini.convert as convert

    path, sd = official_file
    calls = []
    real = convert.adapt_state_dict

    def counted(*args, **kwargs):
        calls.append(convert.is_official(args[0]))
        return real(*args, **kwargs)

    for module in ("sret_mini.convert", "sret_mini.registry", "sret_mini.engine.checkpoint"):
        monkeypatch.setattr(f"{module}.adapt_state_dict", counted)
    if route == "sret_mini.create_model":
        sret_mini.create_model("sret_t", checkpoint_path=path)
    elif route == "timm checkpoint_path":
        timm.create_model("sret_t", checkpoint_path=str(path))
    elif route == "timm pretrained file":
        timm.create_model("sret_t", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    else:
        sret_mini.create_model("sret_t").load_state_dict(dict(sd))
    assert calls == [True], f"{route}: adapt_state_dict ran {len(calls)} times (official layout each time: {calls})"

def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        sret_mini.load_file(path)


def test_weights_for_another_size_get_a_resized_position_embedding(official_file):
    path, sd = official_file
    model = sret_mini.create_model("sret_t", img_size=256, checkpoint_path=path)
    expected = torch.nn.functional.interpolate(sd["pos_embed"], size=(32, 32), mode="bicubic", align_corners=False)
    torch.testing.assert_close(model.pos_embed.data, expected)
    assert predictions(model, 256).shape == (2, 1000)


def test_a_classifier_of_another_size_is_left_out_with_a_warning(official_file):
    path, sd = official_file
    with pytest.warns(UserWarning, match="1000 classes"):
        model = sret_mini.create_model("sret_t", num_classes=10, checkpoint_path=path)
    torch.testing.assert_close(model.norm.weight.data, sd["norm.weight"])
    assert model.head.weight.shape == (10, 256)


def test_pretrained_without_a_file_says_where_the_weights_are():
    with pytest.raises(ValueError, match=r"drive\.google\.com.*checkpoint_path"):
        timm.create_model("sret_t.dist_in1k", pretrained=True)


def test_our_checkpoints_round_trip_through_a_file(tmp_path):
    model = sret_mini.create_model("sret_t", num_classes=10, img_size=64)
    path = sret_mini.save_atomic({"model": model.state_dict()}, tmp_path / "run" / "last.pt")
    again = sret_mini.create_model("sret_t", num_classes=10, img_size=64, checkpoint_path=path)
    assert torch.equal(predictions(model, 64), predictions(again, 64))


def test_save_atomic_leaves_no_partial_file_when_saving_fails(tmp_path):
    path = tmp_path / "ckpt.pt"
    sret_mini.save_atomic({"a": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        sret_mini.save_atomic({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))  # old file intact
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind
