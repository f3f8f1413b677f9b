"""Recursion: shared blocks applied `loops` times, each application with its own NLL and groups."""

import pytest
import torch

import sret_mini


def test_released_schedule_pairs_each_block_with_two_nlls():
    model = sret_mini.create_model("sret_t")
    apps = list(model.block_applications())
    stage0 = [(i, b, g) for s, i, b, g in apps if s == 0]
    # block 0 with G1 = 8 then G2 = 2, then block 1 likewise
    assert stage0 == [(0, 0, 8), (1, 0, 2), (2, 1, 8), (3, 1, 2)]
    assert [len(s.blocks) for s in model.stages] == [2, 5, 3]
    assert [len(s.nlls) for s in model.stages] == [4, 10, 6]


@pytest.mark.parametrize("loops", [1, 2, 3, 5])
def test_any_number_of_loops_builds_and_runs(loops):
    model = sret_mini.create_model("sret_t", loops=loops, num_classes=3, img_size=64)
    assert model.cfg.depth == tuple(u * loops for u in (2, 5, 3))
    groups = [g for s, i, b, g in model.block_applications() if s == 0]
    assert groups == ([8] + [2] * (loops - 1)) * 2  # first pass G1, every later pass G2
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3)


def test_every_application_of_a_shared_block_sends_gradient_to_it():
    model = sret_mini.create_model("sret_t", loops=3, num_classes=3, img_size=64)
    shared = model.stages[1].blocks[2].attn.qkv
    grads = []

    def keep_output_grad(module, inputs, output):
        output.register_hook(lambda g: grads.append(g.abs().sum().item()))

    shared.register_forward_hook(keep_output_grad)
    model(torch.randn(2, 3, 64, 64)).logsumexp(-1).sum().backward()
    assert len(grads) == 3 and all(g > 0 for g in grads)  # three applications, each with gradient
    assert shared.weight.grad.abs().sum() > 0


def test_each_application_has_its_own_nll_and_all_are_used():
    model = sret_mini.create_model("sret_t", num_classes=3, img_size=64)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    for stage in model.stages:
        for nll in stage.nlls:
            assert nll.mlp.fc1.weight.grad.abs().sum() > 0


def test_learnable_residual_coefficients_start_at_one_and_learn():
    model = sret_mini.create_model("sret_t", num_classes=3, img_size=64)
    block = model.stages[0].blocks[0]
    coefs = [block.skip_attn, block.scale_attn, block.skip_mlp, block.scale_mlp]
    assert all(c.item() == 1.0 and c.requires_grad for c in coefs)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert all(c.grad is not None and c.grad.abs().item() > 0 for c in coefs)


def test_gradient_checkpointing_gives_identical_gradients():
    torch.manual_seed(0)
    plain = sret_mini.create_model("sret_t", num_classes=5, img_size=64, drop_path_rate=0.2, shuffle="train")
    ckpt = sret_mini.create_model("sret_t", num_classes=5, img_size=64, drop_path_rate=0.2, shuffle="train")
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing(True)
    x = torch.randn(3, 3, 64, 64)
    grads = []
    for model in (plain, ckpt):
        model.train()
        torch.manual_seed(1)  # same permutations and drop-path masks
        model(x).square().sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        assert torch.equal(g, grads[1][name]), name  # shared blocks included


def test_naive_recursion_has_no_nlls_and_plain_residuals_have_no_coefficients():
    full = sret_mini.create_model("sret_nano")
    naive = sret_mini.create_model("sret_nano", nll=False, lrc=False)
    names = {n for n, _ in naive.named_parameters()}
    assert not any(".nlls." in n or "skip" in n or "scale" in n for n in names)
    nll_params = sum(p.numel() for n, p in full.named_parameters() if ".nlls." in n)
    coefficients = sum(
        p.numel() for n, p in full.named_parameters() if ".blocks." in n and ("skip" in n or "scale" in n)
    )
    assert sret_mini.count_params(full) - sret_mini.count_params(naive) == nll_params + coefficients
    assert naive(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_models_without_nlls_cannot_be_written_in_the_official_layout():
    with pytest.raises(ValueError, match="only models made with nll=True"):
        sret_mini.to_official(sret_mini.create_model("sret_nano", nll=False).state_dict())


def test_the_deep_models_have_100_and_1000_layers_within_13_to_15_million_parameters():
    for name, layers in (("sret_deep100", 100), ("sret_deep1000", 1000)):
        model = sret_mini.create_model(name)
        assert sum(1 for _ in model.block_applications()) == layers
        assert 13e6 <= sret_mini.count_params(model) <= 15e6


def test_shared_nlls_serve_consecutive_applications_of_one_block():
    model = sret_mini.create_model("sret_nano", loops=4, nll_share=2, num_classes=3)
    stage = model.stages[1]  # 2 shared blocks x 4 loops = 8 applications, 4 NLLs
    assert stage.num_applications == 8 and len(stage.nlls) == 4
    order = []
    hooks = [nll.register_forward_hook(lambda m, i, o, k=k: order.append(k)) for k, nll in enumerate(stage.nlls)]
    model(torch.randn(1, 3, 16, 16))
    assert order == [0, 0, 1, 1, 2, 2, 3, 3]
    for h in hooks:
        h.remove()


def test_nll_sharing_must_divide_the_loops():
    with pytest.raises(ValueError, match=r"nll_share=3 must be >= 1 and divide the loops"):
        sret_mini.create_model("sret_nano", nll_share=3)
