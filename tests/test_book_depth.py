"""sret_mini.book.depth: the extreme-depth chapter's helpers (parameters by part, gradients, steps)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import sret_mini
from sret_mini import TrainConfig, train
from sret_mini.book import depth


def tiny(**overrides):
    """An SReT small enough for the CPU: 4 shared blocks, 2 loops (8 applications), 16 px."""
    torch.manual_seed(0)
    return sret_mini.create_model("sret_nano", **overrides)


def batch(n=2, size=16):
    return torch.randn(n, 3, size, size), torch.randint(0, 10, (n,))


def test_parameter_parts_add_up_to_the_total():
    parts = depth.parameter_parts(tiny())
    assert parts["blocks"] + parts["nlls"] + parts["rest"] == parts["total"] == sret_mini.count_params(tiny())


def test_parameter_parts_do_not_change_with_the_loops():
    with torch.device("meta"):
        two, ten = (depth.parameter_parts(sret_mini.create_model("sret_nano", loops=n)) for n in (2, 10))
    assert two["blocks"] == ten["blocks"] and two["rest"] == ten["rest"]
    assert ten["nlls"] == 5 * two["nlls"]  # one NLL per application


def test_sharing_an_nll_divides_the_nll_parameters():
    with torch.device("meta"):
        deep100, deep1000 = (
            depth.parameter_parts(sret_mini.create_model(n)) for n in ("sret_deep100", "sret_deep1000")
        )
        unshared = depth.parameter_parts(sret_mini.create_model("sret_deep1000", nll_share=1))
    assert deep100 == deep1000
    assert unshared["nlls"] == 10 * deep1000["nlls"]


def test_stream_gradient_norms_give_one_finite_positive_value_per_application():
    model = tiny()
    norms = depth.stream_gradient_norms(model, *batch())
    applications = sum(1 for _ in model.block_applications())
    assert len(norms) == applications == 8
    assert all(math.isfinite(v) and v > 0 for v in norms)


def test_stream_gradient_norms_count_applications_of_a_shared_nll():
    model = tiny(nll_share=2)
    assert len(depth.stream_gradient_norms(model, *batch())) == 8


def test_stream_gradient_norms_remove_their_hooks():
    model = tiny()
    depth.stream_gradient_norms(model, *batch())
    assert all(not nll._forward_hooks for stage in model.stages for nll in stage.nlls)


def test_stream_gradient_norm_of_the_last_application_is_that_of_the_stage_output():
    # the last application's output is the last stage's tokens: check against autograd directly
    model = tiny(drop_path_rate=0.0)
    images, labels = batch()
    torch.manual_seed(1)  # the same token permutations in both passes
    norms = depth.stream_gradient_norms(model, images, labels)
    torch.manual_seed(1)
    features = model.forward_features(images).detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(model.forward_head(features), labels).backward()
    assert norms[-1] == pytest.approx(features.grad.norm().item(), rel=1e-5)


def test_step_log_records_loss_and_gradient_norm():
    model = tiny()
    images, labels = batch()
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    log = depth.StepLog()
    log(SimpleNamespace(model=model), loss.detach())
    expected = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    assert log.loss == [pytest.approx(loss.item())]
    assert log.grad_norm == [pytest.approx(expected.item(), rel=1e-5)]


def test_step_log_means_the_first_and_last_steps():
    log = depth.StepLog()
    log.loss = [4.0, 2.0, 1.0, 1.0]
    assert log.mean_loss(True, 2) == 3.0 and log.mean_loss(False, 2) == 1.0


def test_step_log_works_as_the_step_hook_of_train():
    log = depth.StepLog()
    train(TrainConfig(batch_size=8, stop_after_steps=3, progress=False), step_hook=log)
    assert len(log.loss) == len(log.grad_norm) == 3


def test_timed_step_gives_the_same_gradients_with_and_without_checkpointing():
    model = tiny()
    images, labels = batch()
    seconds, plain = depth.timed_step(model, images, labels, checkpointing=False, seed=3)
    _, checkpointed = depth.timed_step(model, images, labels, checkpointing=True, seed=3)
    assert seconds > 0 and len(plain) == len(checkpointed) > 0
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(plain, checkpointed))
    assert not any(stage.grad_checkpointing for stage in model.stages)  # left off again
