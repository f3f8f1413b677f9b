"""The model-table chapter's helpers: stand-ins for the authors' checkpoint files, and their aliases."""

import torch

import sret_mini
from sret_mini.book import models
from sret_mini.convert import is_official

from conftest import LISTINGS, read_listing


def test_a_stand_in_has_the_keys_shapes_and_aliases_of_the_authors_file():
    listing = next(p for p in LISTINGS if p.stem == "SReT_T")
    stand_in = models.stand_in_state_dict("sret_t")
    expected = read_listing(listing)
    assert {k: tuple(t.shape) for k, t in stand_in.items()} == {k: shape for k, shape, _ in expected}
    assert models.aliases(stand_in) == {key: alias for key, _, alias in expected if alias}


def test_a_stand_in_is_in_the_authors_layout_and_loads_strictly():
    stand_in = models.stand_in_state_dict("sret_nano")
    assert is_official(stand_in)
    ours = sret_mini.from_official(stand_in)
    assert len(ours) == len(stand_in) - len(models.aliases(stand_in))
    sret_mini.create_model("sret_nano").load_state_dict(ours, strict=True)


def test_no_two_tensors_of_a_stand_in_are_equal():
    ours = sret_mini.from_official(models.stand_in_state_dict("sret_nano"))
    tensors = [(k, t) for k, t in ours.items() if t.is_floating_point()]
    equal = [(a, b) for i, (a, s) in enumerate(tensors) for b, t in tensors[i + 1 :]
             if s.shape == t.shape and torch.equal(s, t)]  # fmt: skip
    assert not equal
    assert all(ours[k].item() != 1.0 for k in ours if k.endswith(("skip", "scale", "skip_attn")))


def test_a_stand_in_depends_only_on_its_seed_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = models.stand_in_state_dict("sret_nano", seed=1)
    assert torch.equal(torch.rand(1), expected_next)
    b = models.stand_in_state_dict("sret_nano", seed=1)
    c = models.stand_in_state_dict("sret_nano", seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.weight"], c["head.weight"])


def test_randomise_keeps_batchnorm_variances_positive():
    model = models.randomise_(sret_mini.create_model("sret_nano"), seed=0)
    variances = [t for k, t in model.state_dict().items() if k.endswith("running_var")]
    assert variances and all((v > 0).all() for v in variances)


def test_a_saved_stand_in_loads_through_create_model(tmp_path):
    stand_in = models.stand_in_state_dict("sret_nano")
    path = models.save_authors_file(stand_in, tmp_path / "nano.pth")
    assert set(torch.load(path, weights_only=True)) == {"model"}
    loaded = sret_mini.create_model("sret_nano", checkpoint_path=path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sret_mini.from_official(stand_in).items())


def test_aliases_are_shared_memory_not_equal_values():
    t = torch.randn(3)
    state = {"a": t, "b": t, "c": t.clone(), "d": t.view(3)}
    assert models.aliases(state) == {"b": "a", "d": "a"}
