"""Structural reparameterization: branched ViT blocks, joined during training, merge into one path."""

import warnings

import pytest
import torch
from einops import rearrange
from torch import nn

from sret_mini import reparam
from sret_mini.reparam import (
    BranchedAttention,
    BranchedMLP,
    HeadwiseProjection,
    JoiningSchedule,
    PlainBlock,
    create_branched,
    finish_joining,
    fold_layernorm,
    join,
    joining,
    merge,
    set_joining,
)

SMALL = dict(depth=2, dim=32, heads=4, num_classes=5, img_size=16, patch_size=4)


def small_model(branches: int = 2, **overrides) -> reparam.ViT:
    """A tiny branched ViT with every weight moved off its initial value (LayerNorms included)."""
    model = create_branched(**(SMALL | dict(branches=branches) | overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # LayerNorm gamma and beta start at 1 and 0, where folding them would be trivial
            p.add_((0.3 if "norm" in name else 0.05) * torch.randn_like(p))
    return model


def images(batch: int = 4, size: int = 16, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, dtype=dtype)


def merged_quietly(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return merge(model)


def max_difference(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -------------------------------------------------------------------------------------------------
# the merge
@pytest.mark.parametrize("branches", [1, 2, 3, 4])
def test_merged_model_equals_the_branched_one_once_joining_has_finished(branches):
    model = small_model(branches)
    assert not torch.allclose(model.blocks[0].norm1.weight, torch.ones(SMALL["dim"]))  # affine really non-trivial
    finish_joining(model)
    x = images()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finished model merges without a warning
        merged = merge(model)
    with torch.no_grad():
        torch.testing.assert_close(merged(x), model(x), atol=1e-5, rtol=0)


def test_the_merge_is_exact_algebra_not_luck_in_float64():
    model = small_model(3).double()
    finish_joining(model)
    assert max_difference(merge(model), model, images(dtype=torch.float64)) < 1e-12


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
def test_merging_before_joining_has_finished_is_not_exact(lam):
    model = small_model(2)
    set_joining(model, lam)
    assert max_difference(merged_quietly(model), model, images()) > 1e-2  # far above the 1e-5 of a finished merge


def test_merging_before_joining_has_finished_warns():
    model = small_model(2)
    set_joining(model, 0.5)
    with pytest.warns(UserWarning, match=r"lam=0.5 < 1.*finish_joining"):
        merge(model)


def test_a_single_branch_merges_exactly_without_any_joining():
    model = small_model(1)  # lam = 0: with one branch there is nothing to join
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = merge(model)
    assert max_difference(merged, model, images()) < 1e-5


def test_merged_model_is_a_single_path_plain_vit():
    model = small_model(3)
    finish_joining(model)
    merged = merge(model)
    assert all(isinstance(block, PlainBlock) for block in merged.blocks)
    assert len(merged.blocks) == SMALL["depth"]
    assert not any(
        isinstance(m, (BranchedAttention, BranchedMLP, HeadwiseProjection, nn.ModuleList)) for m in merged.modules()
    )
    assert all(not m.elementwise_affine for m in merged.modules() if isinstance(m, nn.LayerNorm))
    assert not any(key.endswith("lam") for key in merged.state_dict())  # no joining left to do


@pytest.mark.parametrize("branches", [1, 2, 4])
def test_merged_model_drops_the_extra_branches_and_the_layernorm_affines(branches):
    model = small_model(branches)
    c, hidden, depth = SMALL["dim"], 4 * SMALL["dim"], SMALL["depth"]
    per_branch = (3 * c * c + 3 * c) + (c * c + c) + (c * hidden + hidden) + (hidden * c + c)  # qkv, proj, fc1, fc2
    affines = depth * 2 * (2 * c) + 2 * c  # gamma and beta of two LayerNorms per block, and of the final one
    merged = merged_quietly(model)
    assert count(model) - count(merged) == depth * (branches - 1) * per_branch + affines
    assert count(merged) < count(model)


def test_merge_keeps_dtype_and_training_mode():
    model = small_model(2).double().train()
    merged = merged_quietly(model)
    assert merged.training and merged.pos_embed.dtype == torch.float64


# -------------------------------------------------------------------------------------------------
# the ingredients
def test_folding_layernorm_affine_into_the_next_linear_is_exact():
    norm, linear = nn.LayerNorm(16), nn.Linear(16, 8)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.5 * torch.randn(16))
        norm.bias.copy_(0.5 * torch.randn(16))
    folded = fold_layernorm(norm, linear)
    assert not folded[0].elementwise_affine
    x = 3 * torch.randn(5, 7, 16) + 1
    with torch.no_grad():
        torch.testing.assert_close(folded(x), linear(norm(x)), atol=1e-5, rtol=0)


def test_headwise_projection_equals_a_linear_on_concatenated_heads():
    proj = HeadwiseProjection(dim=12, heads=3)
    linear = nn.Linear(12, 12)
    with torch.no_grad():
        linear.weight.copy_(rearrange(proj.weight, "h c d -> c (h d)"))
        linear.bias.copy_(proj.bias)
    heads = torch.randn(2, 3, 5, 4)  # (B, H, N, d)
    concatenated = rearrange(heads, "b h n d -> b n (h d)")
    with torch.no_grad():
        torch.testing.assert_close(proj(heads), linear(concatenated))


def test_join_moves_each_branch_a_fraction_lam_towards_the_branch_mean():
    h = torch.randn(3, 2, 5)  # three branches
    mean = h.mean(dim=0, keepdim=True)
    assert torch.equal(join(h, 0.0), h)
    assert torch.equal(join(h, 1.0), mean.expand_as(h))  # bit-identical: the non-linearity sees one input
    torch.testing.assert_close(join(h, 0.25), h + 0.25 * (mean - h))


def test_branches_start_different():
    # identical branches would get identical gradients and never become more than one branch
    mlp = create_branched(**SMALL).blocks[0].mlp
    assert not torch.equal(mlp.fc1[0].weight, mlp.fc1[1].weight)


# -------------------------------------------------------------------------------------------------
# the joining schedule
def test_schedule_moves_lam_from_0_to_1():
    model = small_model(2)
    schedule = JoiningSchedule(model, start=0.25, end=0.75)
    progress = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    assert [schedule.step(p) for p in progress] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    assert joining(model) == 1.0


def test_schedule_sets_every_branched_layer():
    model = small_model(2)
    JoiningSchedule(model).step(0.5)
    layers = [m for m in model.modules() if isinstance(m, (BranchedAttention, BranchedMLP))]
    assert len(layers) == 2 * SMALL["depth"] and all(float(m.lam) == 0.5 for m in layers)


def test_finish_joining_puts_the_schedule_at_its_end():
    model = small_model(2)
    assert joining(model) == 0.0  # a new model starts with independent branches
    finish_joining(model)
    assert joining(model) == 1.0


def test_joining_is_saved_in_the_state_dict():
    model = small_model(2)
    set_joining(model, 0.3)
    fresh = create_branched(**SMALL)
    fresh.load_state_dict(model.state_dict())
    assert joining(fresh) == pytest.approx(0.3)


# -------------------------------------------------------------------------------------------------
# training
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_gradients_reach_every_branch(lam):
    model = small_model(3).train()
    set_joining(model, lam)
    model(images()).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_a_few_training_steps_reduce_the_loss():
    model = create_branched(**SMALL, branches=2).train()
    x, y = images(8), torch.randint(0, SMALL["num_classes"], (8,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    schedule = JoiningSchedule(model)
    losses = []
    for step in range(12):
        schedule.step(step / 11)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert max_difference(merge(model.eval()), model, x) < 1e-5  # and the trained result merges exactly


# -------------------------------------------------------------------------------------------------
# errors
def test_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"dim=30 is not divisible by heads=4.*dim=32"):
        create_branched(dim=30, heads=4)


def test_img_size_not_divisible_by_patch_size():
    with pytest.raises(ValueError, match=r"img_size=30 is not divisible by patch_size=4.*img_size=32"):
        create_branched(img_size=30, patch_size=4)


@pytest.mark.parametrize("branches", [0, -1])
def test_fewer_than_one_branch(branches):
    with pytest.raises(ValueError, match=rf"branches={branches}: a block needs at least one branch"):
        create_branched(branches=branches)


def test_wrong_number_of_input_channels():
    model = create_branched(**SMALL)
    with pytest.raises(ValueError, match=r"expected 3 input channels, got 1.*in_chans=1"):
        model(torch.randn(2, 1, 16, 16))


def test_wrong_image_size():
    model = create_branched(**SMALL)
    with pytest.raises(ValueError, match=r"expected 16x16 images, got 32x32.*img_size=32"):
        model(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("lam", [-0.1, 1.5])
def test_joining_coefficient_outside_0_1(lam):
    with pytest.raises(ValueError, match=r"joining coefficient goes from 0 .* to 1"):
        set_joining(create_branched(**SMALL), lam)


def test_schedule_that_ends_before_it_starts():
    with pytest.raises(ValueError, match=r"need 0 <= start < end <= 1"):
        JoiningSchedule(create_branched(**SMALL), start=0.8, end=0.2)


def test_merging_a_model_without_branches():
    model = small_model(2)
    finish_joining(model)
    with pytest.raises(ValueError, match="merge expects a model made by create_branched"):
        merge(merge(model))


# -------------------------------------------------------------------------------------------------
# recursion, and the deployed form of either way
def test_recursive_applies_every_block_loops_times_with_its_weights_stored_once():
    model = small_model(1)
    params = count(model)
    stored = list(model.blocks)
    reparam.recursive(model, 3)
    assert len(model.blocks) == 3 * SMALL["depth"]
    assert [id(b) for b in model.blocks] == [id(b) for b in stored for _ in range(3)]
    assert count(model) == params  # shared, not copied


def test_recursive_refuses_fewer_than_one_loop():
    with pytest.raises(ValueError, match=r"loops=0: every block is applied at least once"):
        reparam.recursive(small_model(1), 0)


def test_deploy_keeps_a_recursive_model_recursive_and_exact():
    model = reparam.recursive(small_model(1), 2)
    deployed = reparam.deploy(model)
    assert len(deployed.blocks) == 2 * SMALL["depth"]
    assert deployed.blocks[0] is deployed.blocks[1] and deployed.blocks[1] is not deployed.blocks[2]
    assert all(isinstance(b, PlainBlock) for b in deployed.blocks)
    assert max_difference(deployed, model, images()) < 1e-5
    affines = SMALL["depth"] * 2 * (2 * SMALL["dim"]) + 2 * SMALL["dim"]
    assert count(model) - count(deployed) == affines  # the shared blocks stay stored once


def test_deploy_of_a_branched_model_is_its_merge():
    model = small_model(3)
    finish_joining(model)
    deployed, merged = reparam.deploy(model), merge(model)
    assert len(deployed.blocks) == SMALL["depth"] and count(deployed) == count(merged)
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), merged(x))


def test_recursive_and_reparameterized_deploy_the_same_compute_as_plain():
    from sret_mini import count_macs
    from sret_mini.book import reparam_lab

    arch = {k: v for k, v in SMALL.items() if k != "depth"}
    macs = {}
    for arm in reparam_lab.ARMS:
        model = reparam_lab.build(arm, depth=4, factor=2, **arch)
        finish_joining(model)
        macs[arm] = count_macs(reparam.deploy(model), SMALL["img_size"])
    assert len(set(macs.values())) == 1, macs


def test_lab_refuses_an_unknown_arm_and_a_depth_recursion_cannot_split():
    from sret_mini.book import reparam_lab

    with pytest.raises(ValueError, match="arm='deep'"):
        reparam_lab.build("deep", depth=4, factor=2)
    with pytest.raises(ValueError, match="depth=5 is not divisible by factor=2"):
        reparam_lab.build("recursive", depth=5, factor=2)


def test_lab_trains_an_arm_and_tests_its_deployed_form():
    from sret_mini import TrainConfig
    from sret_mini.book import reparam_lab
    from sret_mini.data import load_dataset

    spec = load_dataset("digits", img_size=8)
    test = reparam_lab.test_set(spec, 8)
    cfg = TrainConfig(dataset="digits", img_size=8, epochs=4, warmup_epochs=0, batch_size=256, augment=False)
    arch = dict(dim=16, heads=2, num_classes=10, img_size=8, patch_size=4)
    run = reparam_lab.train_arm("reparameterized", 0, cfg, test, depth=2, factor=2, **arch)
    assert 0 <= run.top1 <= 100 and run.merge_gap < 1e-4
    assert all(isinstance(b, PlainBlock) for b in run.deployed.blocks)
