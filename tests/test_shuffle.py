"""The permutation policies: deterministic evaluation by default, the official behaviour on request."""

import pytest
import torch

import sret_mini


@pytest.fixture
def x():
    return torch.randn(2, 3, 64, 64)


def predictions(model, x, n=2):
    with torch.no_grad():
        return [model(x) for _ in range(n)]


def test_default_policy_makes_evaluation_deterministic(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64).eval()
    assert model.cfg.shuffle == "train"
    a, b = predictions(model, x)
    assert torch.equal(a, b)


def test_default_policy_still_shuffles_in_evaluation(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64).eval()
    unshuffled = sret_mini.create_model("sret_t", num_classes=5, img_size=64, shuffle="none").eval()
    unshuffled.load_state_dict(model.state_dict())
    assert not torch.allclose(predictions(model, x, 1)[0], predictions(unshuffled, x, 1)[0])


def test_default_policy_draws_fresh_permutations_in_training(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64, drop_path_rate=0.0).train()
    a, b = predictions(model, x)  # no dropout or drop path: only the permutation differs
    assert not torch.allclose(a, b)


def test_random_policy_is_non_deterministic_in_evaluation_like_the_official_code(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64, shuffle="random").eval()
    a, b = predictions(model, x)
    assert not torch.allclose(a, b)


def test_none_policy_is_deterministic_in_training_and_evaluation(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64, shuffle="none", drop_path_rate=0.0)
    for mode in (model.train, model.eval):
        mode()
        a, b = predictions(model, x)
        assert torch.equal(a, b)


def test_unsliced_models_are_deterministic_under_every_policy(x):
    for policy in sret_mini.SHUFFLE_POLICIES:
        model = sret_mini.create_model("sret_t_noslice", num_classes=5, img_size=64, shuffle=policy).eval()
        a, b = predictions(model, x)
        assert torch.equal(a, b)


def test_set_shuffle_switches_the_policy(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64, shuffle="random").eval()
    model.set_shuffle("train")
    a, b = predictions(model, x)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="choose one of"):
        model.set_shuffle("sometimes")


def test_set_shuffle_can_change_the_fixed_evaluation_permutations(x):
    model = sret_mini.create_model("sret_t", num_classes=5, img_size=64).eval()
    reference = sret_mini.create_model("sret_t", num_classes=5, img_size=64, shuffle_seed=7).eval()
    reference.load_state_dict(model.state_dict())
    before = predictions(model, x, 1)[0]
    model.set_shuffle("train", seed=7)
    after = predictions(model, x, 1)[0]
    assert not torch.equal(before, after) and torch.equal(after, predictions(reference, x, 1)[0])
