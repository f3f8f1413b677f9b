"""Bad input fails early with a ValueError that names the problem and the fix."""

import pytest
import torch

import sret_mini

from conftest import LISTINGS, random_official_state_dict


def test_wrong_number_of_input_channels():
    model = sret_mini.create_model("sret_t", img_size=64)
    with pytest.raises(ValueError, match=r"expected 3 input channels, got 1.*in_chans=1"):
        model(torch.randn(2, 1, 64, 64))


def test_input_whose_tokens_cannot_be_split_into_groups():
    model = sret_mini.create_model("sret_t", img_size=64)
    with pytest.raises(ValueError, match=r"72x72 gives stage 1 a 9x9 grid of 81 tokens.*groups_first=8"):
        model(torch.randn(1, 3, 72, 72))


def test_model_created_for_an_impossible_size():
    with pytest.raises(ValueError, match=r"cannot be cut into groups_first=14"):
        sret_mini.create_model("sret_lt_g16", img_size=64)


def test_depth_not_a_multiple_of_unique_blocks():
    with pytest.raises(ValueError, match=r"stage 2: depth 10 is not a multiple of unique_blocks 3.*use depth 9 or 12"):
        sret_mini.SReTConfig(unique_blocks=(2, 3, 3))


def test_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"stage 1: width 64 is not divisible by 3 heads"):
        sret_mini.SReTConfig(heads=(3, 4, 8))


def test_per_stage_settings_of_different_lengths():
    with pytest.raises(ValueError, match=r"groups_first has 2 entries but dims has 3"):
        sret_mini.SReTConfig(groups_first=(8, 4))


def test_loops_and_depth_together():
    with pytest.raises(ValueError, match="either depth or loops"):
        sret_mini.create_model("sret_t", loops=3, depth=(4, 10, 6))


def test_unknown_option():
    with pytest.raises(ValueError, match=r"unknown SReT option\(s\) \['num_layers'\]"):
        sret_mini.create_model("sret_t", num_layers=12)


def test_unknown_shuffle_policy():
    with pytest.raises(ValueError, match=r"shuffle='always'"):
        sret_mini.create_model("sret_t", shuffle="always")


def test_checkpoint_for_another_variant_names_the_right_one():
    sd = random_official_state_dict(next(p for p in LISTINGS if p.stem == "SReT_S"))
    model = sret_mini.create_model("sret_t")
    with pytest.raises(ValueError, match=r"shapes of sret_s, sret_s_noslice"):
        model.load_state_dict(sd)


def test_checkpoint_file_for_another_variant(tmp_path):
    path = tmp_path / "lt.pth"
    torch.save({"model": sret_mini.create_model("sret_lt").state_dict()}, path)
    with pytest.raises(ValueError, match=r"does not fit this model.*sret_lt"):
        sret_mini.create_model("sret_t", checkpoint_path=path)


def test_checkpoint_with_other_loops(tmp_path):
    path = tmp_path / "loops3.pth"
    torch.save(sret_mini.create_model("sret_t", loops=3).state_dict(), path)
    with pytest.raises(ValueError, match=r"missing keys.*unexpected keys"):
        sret_mini.create_model("sret_t", checkpoint_path=path)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        sret_mini.create_model("sret_t", checkpoint_path=tmp_path / "nope.pth")
