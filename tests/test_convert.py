"""Official checkpoints: layout conversion, aliases, and the same predictions as the official model."""

import pytest
import torch

import sret_mini

from conftest import LISTINGS, ROWS, random_official_state_dict, read_listing
from official_reference import official_forward

listings = pytest.mark.parametrize("listing", LISTINGS, ids=[p.stem for p in LISTINGS])


def model_for(listing, **kwargs):
    return sret_mini.create_model(ROWS[listing.stem]["sret_mini_name"], **kwargs)


@listings
def test_official_state_dict_converts_and_loads_strictly(listing):
    sd = random_official_state_dict(listing)
    ours = sret_mini.from_official(sd)
    model = model_for(listing)
    assert sorted(ours) == sorted(model.state_dict())
    model.load_state_dict(ours, strict=True)
    unique = {id(v) for v in sd.values()}
    assert len(ours) == len(unique)  # every alias collapsed to one tensor


@listings
def test_round_trip_through_our_layout_is_lossless(listing):
    sd = random_official_state_dict(listing)
    back = sret_mini.to_official(sret_mini.from_official(sd))
    assert list(sorted(back)) == list(sorted(sd))
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    for key, _, alias in read_listing(listing):  # repeated blocks are again one tensor
        assert (back[key] is back[alias]) if alias else True


@listings
def test_converted_model_predicts_what_the_official_model_predicts(listing):
    row = ROWS[listing.stem]
    sd = random_official_state_dict(listing, seed=1)
    model = model_for(listing, shuffle="none").eval()
    model.load_state_dict(sret_mini.from_official(sd))
    x = torch.randn(1, 3, row["input_size"], row["input_size"])
    with torch.no_grad():
        ours = model(x)
        ref = official_forward(sd, x, row["heads"], row["groups_first"], row["groups_recursive"])
    assert ref.abs().mean() > 0.05  # the check is not passed by a vanishing output
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_load_state_dict_accepts_the_official_layout_directly():
    listing = LISTINGS[0]
    sd = random_official_state_dict(listing)
    a, b = model_for(listing).eval(), model_for(listing).eval()
    a.load_state_dict(sd)
    b.load_state_dict(sret_mini.from_official(sd))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_module_prefix_is_stripped():
    sd = random_official_state_dict(LISTINGS[0])
    wrapped = {"module." + k: v for k, v in sd.items()}
    assert sret_mini.from_official(wrapped).keys() == sret_mini.from_official(sd).keys()


def test_loops_are_inferred_from_the_aliases():
    model = sret_mini.create_model("sret_t", loops=3)
    official = sret_mini.to_official(model.state_dict())
    assert sum(k.endswith("attn.qkv.weight") for k in official) == 3 * 10
    assert sret_mini.from_official(official).keys() == model.state_dict().keys()


def test_a_copy_of_a_shared_block_that_differs_is_reported():
    sd = dict(random_official_state_dict(LISTINGS[0]))
    sd["transformers.0.blocks.2.attn.proj.weight"] = sd["transformers.0.blocks.2.attn.proj.weight"] + 1
    with pytest.raises(ValueError, match=r"transformers\.0\.blocks\.2\.attn\.proj\.weight should be a copy"):
        sret_mini.from_official(sd, loops=2)


def test_missing_and_unexpected_keys_are_named():
    sd = dict(random_official_state_dict(LISTINGS[0]))
    del sd["transformers.1.blocks.3.mlp.fc2.bias"]
    with pytest.raises(ValueError, match=r"missing keys: \['transformers\.1\.blocks\.3\.mlp\.fc2\.bias'\]"):
        sret_mini.from_official(sd)
    sd = dict(random_official_state_dict(LISTINGS[0]), **{"dist_head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"dist_head\.weight"):
        sret_mini.from_official(sd)
