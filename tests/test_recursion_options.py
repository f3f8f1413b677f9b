"""Depth chosen at call time, the rule for applications beyond the trained count, recall, and
the head's output after every application (a loss at each one)."""

import pytest
import timm
import torch
import torch.nn.functional as F
from einops import rearrange

import sret_mini

# sret_nano: stages of 1, 2 and 1 shared blocks, each applied twice (loops=2); 8x8, 4x4, 2x2 tokens
TRAINED_LOOPS = 2


def nano(**overrides) -> sret_mini.SReT:
    return sret_mini.create_model("sret_nano", num_classes=3, **overrides).eval()


@pytest.fixture
def x():
    return torch.randn(2, 3, 16, 16)


def nll_order(stage, run) -> list[int]:
    """Indices of the NLLs of `stage` in the order `run()` calls them."""
    order = []
    hooks = [nll.register_forward_hook(lambda m, i, o, k=k: order.append(k)) for k, nll in enumerate(stage.nlls)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return order


def grad_size(module) -> float:
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


# --- depth at call time ----------------------------------------------------------------------
def test_loops_none_and_the_trained_count_give_the_built_logits_bit_for_bit(x):
    model = nano()
    with torch.no_grad():
        built = model(x)
        for loops in (None, TRAINED_LOOPS, (TRAINED_LOOPS,) * 3, [None, TRAINED_LOOPS, None]):
            assert torch.equal(model(x, loops=loops), built), loops
        assert torch.equal(model.forward_features(x, loops=TRAINED_LOOPS), model.forward_features(x))


def test_more_loops_add_no_parameters_and_no_state_dict_keys(x):
    model = nano()
    keys, params = list(model.state_dict()), sret_mini.count_params(model)
    with torch.no_grad():
        deeper = model(x, loops=5)
        assert not torch.allclose(deeper, model(x))  # the extra applications do change the output
    assert deeper.shape == (2, 3)
    assert list(model.state_dict()) == keys and sret_mini.count_params(model) == params


def test_call_time_loops_apply_every_shared_block_that_many_times_in_a_row(x):
    model = nano()
    calls = []
    for s, stage in enumerate(model.stages):
        for b, block in enumerate(stage.blocks):
            block.register_forward_hook(lambda m, i, o, key=(s, b): calls.append(key))
    with torch.no_grad():
        model(x, loops=(3, 1, 4))
    assert calls == [(0, 0)] * 3 + [(1, 0), (1, 1)] + [(2, 0)] * 4
    groups = [g for s, i, b, g in model.block_applications(loops=(3, 1, 4)) if s == 0]
    assert groups == [4, 2, 2]  # first pass groups_first, every later pass groups_recursive


def test_last_rule_reuses_the_nll_of_each_blocks_last_trained_application():
    model = nano(extra_applications="last")
    # stage 2: 2 shared blocks x 2 trained loops, NLLs 0, 1 (block 0) and 2, 3 (block 1)
    order = nll_order(model.stages[1], lambda: model(torch.randn(1, 3, 16, 16), loops=4))
    assert order == [0, 1, 1, 1, 2, 3, 3, 3]


def test_cycle_rule_reuses_each_blocks_nlls_in_order():
    model = nano(extra_applications="cycle")
    order = nll_order(model.stages[1], lambda: model(torch.randn(1, 3, 16, 16), loops=5))
    assert order == [0, 1, 0, 1, 0, 2, 3, 2, 3, 2]


@pytest.mark.parametrize("rule", ["last", "cycle", "error"])
def test_fewer_loops_use_the_first_nlls_of_each_block(rule):
    model = nano(extra_applications=rule)
    order = nll_order(model.stages[1], lambda: model(torch.randn(1, 3, 16, 16), loops=1))
    assert order == [0, 2]


def test_the_rules_follow_shared_nlls():
    model = nano(loops=4, nll_share=2)  # stage 2: NLL k serves trained applications 2k and 2k + 1
    order = nll_order(model.stages[1], lambda: model(torch.randn(1, 3, 16, 16), loops=6))
    assert order == [0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3]


@pytest.mark.parametrize("rule, trained", [("last", lambda j: min(j, 1)), ("cycle", lambda j: j % 2)])
def test_extra_applications_equal_a_hand_unrolled_stage(rule, trained):
    # stage 2: 2 shared blocks x 2 trained loops, 4x4 tokens in 4 groups first, then 2 groups
    model = nano(extra_applications=rule, groups_first=(4, 4, 1), groups_recursive=(2, 2, 1))
    stage, loops = model.stages[1], 5
    grid = torch.randn(2, 32, 8, 8)  # the output of stage 1
    with torch.no_grad():
        state = rearrange(stage.downsample(grid), "b c h w -> b (h w) c")
        for i in range(2 * loops):
            block, j = divmod(i, loops)
            if j == 0:
                state = stage.blocks[block](state, stage.groups_first)
            else:  # seed: stage seed + application index, as at the trained depth
                perm = sret_mini.fixed_permutation(16, stage.seed + i)
                state = stage.blocks[block](state, stage.groups_recursive, perm)
            state = stage.nlls[2 * block + trained(j)](state)
        out = stage(grid, loops=loops)
    assert torch.equal(out, rearrange(state, "b (h w) c -> b c h w", h=4))


def test_error_rule_refuses_more_loops_than_trained(x):
    model = nano(extra_applications="error")
    with torch.no_grad():
        assert model(x, loops=TRAINED_LOOPS).shape == (2, 3)
        with pytest.raises(ValueError, match=r"stage 1 was trained with 2 applications .*extra_applications='error'"):
            model(x, loops=3)
        with pytest.raises(ValueError, match=r"stage 3 was trained with 2 applications"):
            model(x, loops=(None, None, 3))


def test_error_rule_allows_any_depth_without_nlls(x):
    model = nano(extra_applications="error", nll=False)
    with torch.no_grad():
        assert not torch.allclose(model(x, loops=5), model(x))


def test_an_extra_application_drops_paths_at_its_blocks_last_trained_rate():
    stage = nano(drop_path_rate=0.1).stages[1]
    r = stage.drop_path_rates  # four trained applications, rates growing with depth
    assert r[0] < r[1] < r[2] < r[3]
    assert [stage.drop_rate(i, 4) for i in range(8)] == [r[0], r[1], r[1], r[1], r[2], r[3], r[3], r[3]]
    assert [stage.drop_rate(i, 1) for i in range(2)] == [r[0], r[2]]


def test_evaluation_at_call_time_depth_is_deterministic_with_train_shuffle(x):
    model = nano(drop_path_rate=0.0)
    assert model.cfg.shuffle == "train"
    with torch.no_grad():
        assert torch.equal(model(x, loops=4), model(x, loops=4))
        model.train()  # fresh permutations in training: two calls differ
        assert not torch.allclose(model(x, loops=4), model(x, loops=4))


def test_gradient_checkpointing_gives_the_same_output_and_gradients_at_call_time_depth(x):
    plain = nano(drop_path_rate=0.2, recall=True, state_norm=True).train()
    ckpt = nano(drop_path_rate=0.2, recall=True, state_norm=True).train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing(True)
    outs, grads = [], []
    for model in (plain, ckpt):
        torch.manual_seed(1)  # same permutations and drop-path masks
        out = model(x, loops=(3, 2, 4))  # more, as many and more: every NLL gets a gradient
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert torch.equal(outs[0], outs[1])
    for name, g in grads[0].items():
        assert torch.equal(g, grads[1][name]), name


def test_timm_models_take_loops_at_call_time(x):
    model = timm.create_model("sret_nano", num_classes=3).eval()
    with torch.no_grad():
        assert model(x, loops=3).shape == (2, 3)
        assert not torch.allclose(model(x, loops=3), model(x))
    strict = timm.create_model("sret_nano", extra_applications="error").eval()
    with pytest.raises(ValueError, match="extra_applications='error'"):
        strict(x, loops=3)


# --- recall: input injection -------------------------------------------------------------------
def test_recall_changes_the_output_and_adds_no_parameters(x):
    plain, recall = nano(), nano(recall=True)
    recall.load_state_dict(plain.state_dict())  # strict: the same keys and shapes
    assert sret_mini.count_params(recall) == sret_mini.count_params(plain)
    with torch.no_grad():
        assert not torch.allclose(recall(x), plain(x))


@pytest.mark.parametrize("state_norm", [False, True])
def test_recall_adds_the_stage_input_before_every_later_application(x, state_norm):
    model = nano(recall=True, state_norm=state_norm)
    stage = model.stages[0]  # one shared block: every application's input passes its pre-hook
    block_inputs, nll_outputs = [], []
    stage.blocks[0].register_forward_pre_hook(lambda m, args: block_inputs.append(args[0]))
    for nll in stage.nlls:
        nll.register_forward_hook(lambda m, i, o: nll_outputs.append(o))
    with torch.no_grad():
        model(x, loops=(3, None, None))
        x0 = block_inputs[0]  # the stem output plus position embedding, as tokens
        for j in (1, 2):  # x <- x + x0, or LN(x) + x0 (stage.state_norm is the identity without it)
            torch.testing.assert_close(block_inputs[j], stage.state_norm(nll_outputs[j - 1]) + x0)
    assert not torch.allclose(block_inputs[1], nll_outputs[0])


def test_state_norm_adds_two_c_parameters_per_stage():
    plain, normed = nano(), nano(recall=True, state_norm=True)
    dims = plain.cfg.dims
    assert sret_mini.count_params(normed) - sret_mini.count_params(plain) == sum(2 * c for c in dims)
    added = set(normed.state_dict()) - set(plain.state_dict())
    assert added == {f"stages.{s}.state_norm.{p}" for s in range(3) for p in ("weight", "bias")}


def test_state_norm_keeps_the_state_bounded_far_beyond_the_trained_depth(x):
    def spread(model, loops):
        with torch.no_grad():
            return model.forward_features(x, loops=loops).std().item()

    recall, normed = nano(recall=True), nano(recall=True, state_norm=True)
    # at initialisation: x + x0 piles the input up at every application, LN(x) + x0 does not
    assert spread(recall, 50) > 100 * spread(recall, TRAINED_LOOPS)
    assert spread(normed, 50) < 2 * spread(normed, TRAINED_LOOPS)


# --- the head after every application ---------------------------------------------------------
@pytest.mark.parametrize("loops", [None, 1, 3, (1, 2, 5)])
def test_forward_applications_last_entry_equals_forward(x, loops):
    model = nano()
    with torch.no_grad():
        apps = model.forward_applications(x, loops=loops)
        expected = model(x, loops=loops)
    n = TRAINED_LOOPS if loops is None else loops if isinstance(loops, int) else loops[-1]
    assert apps.shape == (n, 2, 3)  # the last stage has one shared block
    assert torch.equal(apps[-1], expected)


def test_each_application_entry_is_the_prediction_at_that_depth(x):
    model = nano()  # one shared block in the last stage: application k is depth k + 1
    with torch.no_grad():
        apps = model.forward_applications(x, loops=(None, None, 4))
        for k in range(4):
            assert torch.equal(apps[k], model(x, loops=(None, None, k + 1))), k
    assert not torch.allclose(apps[0], apps[-1])


def test_forward_applications_gives_per_token_predictions_without_pooling(x):
    model = nano(global_pool="")
    with torch.no_grad():
        apps = model.forward_applications(x, loops=3)
        assert apps.shape == (3, 2, 4, 3)  # 3 applications, batch 2, 2x2 tokens, 3 classes
        assert torch.equal(apps[-1], model(x, loops=3))


def test_a_loss_at_an_early_application_skips_the_later_nlls(x):
    model = nano().train()
    apps = model.forward_applications(x)
    F.cross_entropy(apps[0], torch.tensor([0, 1])).backward()  # progressive loss: one term of it
    first, second = model.stages[-1].nlls
    assert grad_size(first) > 0 and grad_size(second) == 0


# --- counts ------------------------------------------------------------------------------------
def test_count_macs_at_call_time_depth_equals_a_model_built_that_deep():
    model = nano()
    params = sret_mini.count_params(model)
    assert sret_mini.count_macs(model, loops=TRAINED_LOOPS) == sret_mini.count_macs(model)
    assert sret_mini.count_macs(model, loops=3) == sret_mini.count_macs(nano(loops=3))
    assert sret_mini.count_macs(model, loops=3) > sret_mini.count_macs(model)
    assert sret_mini.count_params(model) == params  # counting at another depth adds nothing


def test_count_macs_refuses_loops_for_a_model_without_them():
    with pytest.raises(ValueError, match="takes no loops"):
        sret_mini.count_macs(torch.nn.Conv2d(3, 4, 3), img_size=8, loops=2)


# --- bad values --------------------------------------------------------------------------------
@pytest.mark.parametrize("loops", [0, -1, "3", 2.5, True, (2, 2), (2, 2, 2, 2), (2, 0, 2)])
@pytest.mark.parametrize("method", ["forward", "forward_features", "forward_applications"])
def test_bad_call_time_loops_are_refused_before_torch_runs(x, loops, method):
    model = nano()
    stem_calls = []
    model.patch_embed.register_forward_pre_hook(lambda m, args: stem_calls.append(1))
    with pytest.raises(ValueError, match=r"loops="):
        getattr(model, method)(x, loops=loops)
    assert stem_calls == []


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(extra_applications="foo"), r"extra_applications='foo': choose one of 'last', 'cycle', 'error'"),
        (dict(recall="yes"), r"recall='yes' must be True or False"),
        (dict(recall=True, state_norm=1), r"state_norm=1 must be True or False"),
        (dict(state_norm=True), r"state_norm=True needs recall=True"),
    ],
)
def test_bad_recursion_options_are_refused_with_the_option_named(options, message):
    with pytest.raises(ValueError, match=message):
        sret_mini.SReTConfig(**options)
    with pytest.raises(ValueError, match=message):
        nano(**options)
