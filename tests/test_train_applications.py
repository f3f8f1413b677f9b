"""The engine on per-token and per-step labels, and a loss at every application (deep supervision)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

import sret_mini
import sret_mini.engine.loop
from sret_mini import TrainConfig, train
from sret_mini.data import load_dataset
from sret_mini.data.arrows import ArrowsDataset
from sret_mini.engine.checkpoint import load_file, save_atomic
from sret_mini.engine.evaluate import evaluate
from sret_mini.engine.loop import supervised_loss
from sret_mini.engine.train_config import RUN_NEUTRAL

# one stage, one shared block applied 4 times (4 applications); stride 4 at 32 px: one token per cell
ONE_STAGE = dict(stem_stride=4, global_pool="", dims=(32,), heads=(1,), depth=(4,), unique_blocks=(1,),
                 groups_first=(1,), groups_recursive=(1,), recall=True)  # fmt: skip
# 128 arrows images, labels (4 steps, 64 cells) each: 4 steps of 32 images per epoch
ARROWS = dict(dataset="arrows", dataset_options=dict(n_train=128, n_test=64, steps=4), model_kwargs=ONE_STAGE,
              batch_size=32, epochs=2, warmup_epochs=0, lr=3e-3, label_smoothing=0.0, progress=False)  # fmt: skip
# the classic task: one class per image
QUICK = dict(dataset="shapes", dataset_options=dict(n_train=128, n_test=64), img_size=16, batch_size=32,
             epochs=2, progress=False)  # fmt: skip
CE = torch.nn.CrossEntropyLoss()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every token of (B, N, C) logits and (B, N) labels, by hand."""
    return F.cross_entropy(rearrange(logits, "b n c -> (b n) c"), rearrange(labels, "b n -> (b n)"))


def arrows_batch(spec, split: str = "test"):
    """(images (B, 3, 32, 32), labels (B, steps, 64)) of a whole split, transformed as the engine does."""
    transform = spec.transform(False, spec.img_size)
    items = [(transform(image), labels) for image, labels in getattr(spec, split)]
    return torch.stack([i for i, _ in items]), torch.stack([labels for _, labels in items])


def one_step_arrows(monkeypatch):
    """Make the engine's `arrows` give one step's labels only, (64,) per image: plain per-token labels."""
    real = sret_mini.engine.loop.load_dataset

    def per_token(name, **kwargs):
        spec = real(name, **kwargs)
        options = dict(steps=1, step=1, colours=4)
        return dataclasses.replace(spec, train=ArrowsDataset(len(spec.train), seed=0, **options),
                                   test=ArrowsDataset(len(spec.test), seed=1, **options))  # fmt: skip

    monkeypatch.setattr(sret_mini.engine.loop, "load_dataset", per_token)


# --- per-token labels ------------------------------------------------------------------------------
def test_per_token_labels_are_learned_and_the_accuracy_counts_tokens(monkeypatch):
    one_step_arrows(monkeypatch)  # labels (B, 64): the colour of every cell's arrow's cell
    result = train(TrainConfig(**dict(ARROWS, epochs=3, model_kwargs=dict(ONE_STAGE, depth=(1,)))))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert all(0 <= h[key] <= 100 for h in result.history for key in ("train_top1", "test_top1"))
    test = ArrowsDataset(64, steps=1, step=1, seed=1)
    transform = load_dataset("arrows", n_train=1, n_test=1).transform(False, 32)
    images, labels = torch.stack([transform(i) for i, _ in test]), torch.stack([lab for _, lab in test])
    assert labels.shape == (64, 64)
    with torch.no_grad():
        tokens_right = (result.model(images).argmax(-1) == labels).double().mean().item()  # over 64 x 64 tokens
    assert result.history[-1]["test_top1"] == pytest.approx(100 * tokens_right)


def test_evaluate_scores_tokens_and_the_last_step_of_stepped_labels():
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, images):
            return self.logits

    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 5), torch.randint(5, (2, 3))  # 2 images of 3 tokens, 5 classes
    stepped = torch.stack([torch.randint(5, (2, 3)), labels], dim=1)  # (B, steps=2, N): the last step is `labels`
    images = torch.zeros(2, 3, 4, 4)
    per_token = evaluate(Fixed(logits), [(images, labels)], torch.device("cpu"))
    by_steps = evaluate(Fixed(logits), [(images, stepped)], torch.device("cpu"))
    assert per_token["top1"] == pytest.approx(100 * (logits.argmax(-1) == labels).double().mean().item())
    assert per_token["loss"] == pytest.approx(token_ce(logits, labels).item())
    assert per_token["images"] == 2
    assert by_steps == pytest.approx(dict(per_token, images_per_s=by_steps["images_per_s"]))


# --- application_loss = 0: the run as before --------------------------------------------------------
def test_application_loss_zero_is_the_default_run_bit_for_bit(monkeypatch):
    default = train(TrainConfig(**QUICK))

    def refuse(self, x, loops=None):
        raise AssertionError("application_loss=0 must not call forward_applications")

    monkeypatch.setattr(sret_mini.SReT, "forward_applications", refuse)
    zero = train(TrainConfig(**QUICK, application_loss=0.0))
    assert same_weights(default.model, zero.model)
    timeless = [{k: v for k, v in h.items() if k not in ("seconds", "images_per_s")} for h in default.history]
    assert timeless == [{k: v for k, v in h.items() if k not in ("seconds", "images_per_s")} for h in zero.history]


# --- the loss at every application -------------------------------------------------------------------
def test_the_loss_is_the_weighted_final_loss_plus_the_mean_over_applications_on_a_one_stage_model():
    torch.manual_seed(0)
    model = sret_mini.create_model("sret_nano", num_classes=4, img_size=32, **ONE_STAGE).eval()
    images, labels = torch.randn(2, 3, 32, 32), torch.randint(4, (2, 4, 64))  # one label per step and cell
    with torch.no_grad():
        outputs = model.forward_applications(images)  # (A=4, B, N=64, C=4)
    assert outputs.shape == (4, 2, 64, 4)
    w = 0.3
    by_hand = [token_ce(outputs[a], labels[:, a]) for a in range(4)]  # application a against step a + 1
    expected = (1 - w) * by_hand[-1] + w * sum(by_hand) / 4
    assert supervised_loss(CE, outputs, labels, w).item() == pytest.approx(expected.item(), rel=1e-6)
    # without steps (one label per token) every application has the same target: classic deep supervision
    same = [token_ce(outputs[a], labels[:, 0]) for a in range(4)]
    expected = (1 - w) * same[-1] + w * sum(same) / 4
    assert supervised_loss(CE, outputs, labels[:, 0], w).item() == pytest.approx(expected.item(), rel=1e-6)


def test_each_application_is_trained_on_its_own_step():
    torch.manual_seed(0)
    labels = torch.randint(4, (2, 3, 5))  # (B, steps=3, N=5)
    # application a predicts step a + 1 exactly and confidently
    outputs = 30 * rearrange(F.one_hot(labels, 4).float(), "b a n c -> a b n c")
    assert supervised_loss(CE, outputs, labels, 1.0).item() < 1e-6
    assert supervised_loss(CE, outputs, labels.flip(1), 1.0).item() > 5  # the steps in the wrong order
    # the final output is trained on the last step; the others only with application_loss > 0
    assert supervised_loss(CE, outputs[-1], labels, 0.0).item() < 1e-6
    assert supervised_loss(CE, outputs[0], labels, 0.0).item() > 5
    wrong_early = torch.cat([outputs[:-1].flip(-1), outputs[-1:]])  # every application but the last wrong
    assert supervised_loss(CE, wrong_early, labels, 0.5).item() > 5


def test_train_passes_every_application_and_every_step_to_the_loss(monkeypatch):
    calls = []

    def spy(criterion, outputs, labels, application_loss=0.0):
        loss = supervised_loss(criterion, outputs, labels, application_loss)
        calls.append((outputs.detach(), labels, application_loss, loss.detach()))
        return loss

    monkeypatch.setattr(sret_mini.engine.loop, "supervised_loss", spy)
    result = train(TrainConfig(**dict(ARROWS, epochs=1), application_loss=0.5))
    assert len(calls) == 4  # 128 images, 32 a step
    outputs, labels, w, loss = calls[0]
    assert outputs.shape == (4, 32, 64, 4) and labels.shape == (32, 4, 64) and w == 0.5
    steps = [token_ce(outputs[a].float(), labels[:, a]) for a in range(4)]
    assert loss.item() == pytest.approx((0.5 * steps[-1] + 0.5 * sum(steps) / 4).item(), rel=1e-5)
    assert result.history[-1]["train_loss"] == pytest.approx(sum(c[3].item() for c in calls) / 4)


def test_the_reported_accuracy_is_the_final_application_on_the_last_step():
    result = train(TrainConfig(**ARROWS, application_loss=0.5))
    images, labels = arrows_batch(load_dataset("arrows", **ARROWS["dataset_options"]))
    with torch.no_grad():
        final = result.model(images).argmax(-1)  # (B, 64)
    last, first = (100 * (final == labels[:, s]).double().mean().item() for s in (-1, 0))
    assert result.history[-1]["test_top1"] == pytest.approx(last) and last != first


# --- refusals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [-0.1, 1.5, "half"])
def test_an_application_loss_outside_0_to_1_is_refused(value):
    with pytest.raises(ValueError, match="application_loss"):
        TrainConfig(application_loss=value)


def test_application_loss_with_distillation_is_refused():
    with pytest.raises(ValueError, match="application_loss.*teacher"):
        TrainConfig(application_loss=0.5, teacher="resnet18")


def test_application_loss_on_a_model_without_forward_applications_is_refused():
    with pytest.raises(ValueError, match="application_loss.*forward_applications.*ResNet"):
        train(TrainConfig(**QUICK, model="resnet18", application_loss=0.5))


def test_label_steps_other_than_the_applications_are_refused():
    options = dict(ARROWS["dataset_options"], steps=3)  # 3 steps, 4 applications
    with pytest.raises(ValueError, match=r"application_loss.*3 steps.*4 applications.*steps=4.*loops=3"):
        train(TrainConfig(**dict(ARROWS, dataset_options=options), application_loss=0.5))


@pytest.mark.parametrize("option", [dict(mixup=0.8), dict(cutmix=1.0), dict(soft_labels="bank.pt"),
                                    dict(teacher="resnet18")])  # fmt: skip
def test_options_needing_one_class_per_image_are_refused_on_per_token_labels(option):
    name = next(iter(option))
    with pytest.raises(ValueError, match=rf"{name} need one class per image.*\(4, 64\) per image"):
        train(TrainConfig(**ARROWS, **option))


@pytest.mark.parametrize("model_kwargs", [dict(ONE_STAGE, global_pool="avg"), dict(ONE_STAGE, stem_stride=2)])
def test_labels_that_do_not_fit_the_logits_are_refused(model_kwargs):
    # pooled logits (B, C), or 16 x 16 tokens for 64 cells
    with pytest.raises(ValueError, match=r"labels of shape \(32, 4, 64\) do not fit.*global_pool=''"):
        train(TrainConfig(**dict(ARROWS, model_kwargs=model_kwargs)))


# --- resumption --------------------------------------------------------------------------------------
def test_a_resumed_run_with_application_loss_ends_with_the_same_weights_bit_for_bit(tmp_path):
    cfg = TrainConfig(**ARROWS, application_loss=0.5, drop_path=0.1)  # drop path and shuffling draw random numbers
    whole = train(cfg, out=str(tmp_path / "whole"))
    first = train(cfg, out=str(tmp_path / "split"), stop_after_steps=4 + 2)  # mid-epoch 2
    assert first.stopped == "stop_after_steps" and len(first.history) == 1
    rest = train(cfg, out=str(tmp_path / "split"), resume=True)
    assert same_weights(whole.model, rest.model)
    assert [h["train_loss"] for h in whole.history] == [h["train_loss"] for h in rest.history]
    assert [h["train_top1"] for h in whole.history] == [h["train_top1"] for h in rest.history]


def test_resuming_with_another_application_loss_is_refused(tmp_path):
    assert "application_loss" not in RUN_NEUTRAL  # it changes what the run computes
    train(TrainConfig(**ARROWS, application_loss=0.5, out=str(tmp_path), stop_after_steps=2))
    with pytest.raises(ValueError, match=r"cannot resume.*'application_loss': \(0.5, 0.2\)"):
        train(TrainConfig(**ARROWS, application_loss=0.2, out=str(tmp_path), resume=True))


def test_a_run_saved_before_application_loss_existed_resumes_bit_for_bit(tmp_path):
    whole = train(TrainConfig(**QUICK))
    train(TrainConfig(**QUICK, out=str(tmp_path), stop_after_steps=6))  # mid-epoch 2
    state = load_file(tmp_path / "last.pt")
    del state["config"]["application_loss"]  # as an older sret_mini saved it
    save_atomic(state, tmp_path / "last.pt")
    rest = train(TrainConfig(**QUICK, out=str(tmp_path), resume=True))
    assert same_weights(whole.model, rest.model)
    assert [h["train_loss"] for h in whole.history] == [h["train_loss"] for h in rest.history]
