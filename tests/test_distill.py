"""Distillation: the official soft-label loss, online teachers, and FKD soft-label banks."""

import math

import pytest
import torch
import torch.nn.functional as F

import sret_mini
from sret_mini import TrainConfig, train
from sret_mini.data import load_dataset
from sret_mini.distill import KDLoss, build_teacher, soften, teacher_id
from sret_mini.distill.softlabels import SoftLabelBank, SoftLabelDataset, crop_image, expand, make_bank


def kd_by_hand(student, teacher, t):
    """batch mean of -sum_k softmax(t/T)_k * log_softmax(s/T)_k, with explicit sums and exponentials."""
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        zt = sum(math.exp(v / t) for v in t_row)
        zs = sum(math.exp(v / t) for v in s_row)
        total -= sum(math.exp(tv / t) / zt * (sv / t - math.log(zs)) for sv, tv in zip(s_row, t_row))
    return total / len(student)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_loss_is_the_official_formula(temperature):
    student, teacher = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    loss = KDLoss(temperature)(student, teacher)
    assert loss.item() == pytest.approx(kd_by_hand(student, teacher, temperature), rel=1e-10)  # no T^2 factor


def test_the_hard_label_term_is_an_added_weighted_cross_entropy():
    student, teacher, labels = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 4, (6,))
    soft_only = KDLoss(2.0)(student, teacher)
    mixed = KDLoss(2.0, hard_weight=0.5)(student, teacher, labels=labels)
    torch.testing.assert_close(mixed, soft_only + 0.5 * F.cross_entropy(student, labels))


def test_stored_probabilities_give_the_same_loss_as_logits():
    student, teacher = torch.randn(3, 10), torch.randn(3, 10)
    for t in (1.0, 3.0):
        by_logits = KDLoss(t)(student, teacher)
        by_probs = KDLoss(t)(student, teacher_probs=teacher.softmax(-1))
        torch.testing.assert_close(by_logits, by_probs)
    torch.testing.assert_close(soften(teacher.softmax(-1), 3.0), (teacher / 3.0).softmax(-1))


def test_kd_loss_refuses_ambiguous_input():
    with pytest.raises(ValueError, match="exactly one"):
        KDLoss()(torch.randn(2, 3))
    with pytest.raises(ValueError, match="positive"):
        KDLoss(temperature=0)


def test_top_k_probabilities_expand_with_the_rest_spread_evenly():
    probs = torch.tensor([[0.5, 0.2, 0.1, 0.1, 0.1]])
    values, indices = probs.topk(2)
    full = expand(indices, values, 5)
    torch.testing.assert_close(full, torch.tensor([[0.5, 0.2, 0.1, 0.1, 0.1]]))
    exact = expand(*reversed(probs.topk(5)), 5)
    torch.testing.assert_close(exact, probs)


@pytest.fixture(scope="module")
def tiny():
    """A 40-image shapes dataset, a small fixed teacher, and a bank of its soft labels."""
    spec = load_dataset("shapes", n_train=40, n_test=16, img_size=32)
    torch.manual_seed(0)
    teacher = sret_mini.create_model("sret_nano", num_classes=2, img_size=32).eval()
    return spec, teacher


def bank_for(spec, teacher, path, topk=2, **kwargs):
    return make_bank(teacher, spec.train, path, dataset_name=spec.name, teacher_name="nano@test", num_classes=2,
                     img_size=32, mean=spec.mean, std=spec.std, crops=6, topk=topk, progress=False, **kwargs)  # fmt: skip


def test_a_bank_is_one_compact_file_describing_what_it_was_made_for(tiny, tmp_path):
    spec, teacher = tiny
    bank = SoftLabelBank(bank_for(spec, teacher, tmp_path / "bank.safetensors"))
    assert list(tmp_path.iterdir()) == [tmp_path / "bank.safetensors"]
    assert {k: bank.info[k] for k in ("dataset", "num_images", "num_classes", "img_size", "crops", "topk")} == dict(
        dataset="shapes", num_images=40, num_classes=2, img_size=32, crops=6, topk=2
    )
    boxes, flips, indices, probs = bank.crops(7)
    assert boxes.shape == (6, 4) and flips.shape == (6,) and probs.dtype == torch.float16
    assert bank.nbytes() < 40 * 6 * 20 + 4096  # a few bytes per crop, not images


def test_a_replayed_crop_is_the_crop_the_teacher_saw(tiny, tmp_path):
    spec, teacher = tiny
    bank = SoftLabelBank(bank_for(spec, teacher, tmp_path / "bank.safetensors"))
    replay = SoftLabelDataset(spec.train, bank, per_image=3, seed=0)
    views, labels, soft = replay[11]
    assert views.shape == (3, 3, 32, 32) and labels.tolist() == [spec.train[11][1]] * 3
    with torch.no_grad():
        again = teacher(views).softmax(-1)  # the teacher on the replayed crops
    torch.testing.assert_close(soft, again, atol=2e-3, rtol=0)  # float16 storage
    # and the crops are the boxes of the bank, cut from the original image
    boxes, flips, _, _ = bank.crops(11)
    image = spec.train[11][0]
    candidates = [crop_image(image, b, bool(f), 32, spec.mean, spec.std) for b, f in zip(boxes, flips)]
    assert all(any(torch.equal(v, c) for c in candidates) for v in views)


def test_replay_picks_crops_as_a_function_of_seed_epoch_and_index(tiny, tmp_path):
    spec, teacher = tiny
    bank = SoftLabelBank(bank_for(spec, teacher, tmp_path / "bank.safetensors"))
    replay = SoftLabelDataset(spec.train, bank, per_image=2, seed=0)
    assert torch.equal(replay[5][0], replay[5][0])
    epochs = [replay[5 + e * len(replay)][0] for e in range(4)]
    assert any(not torch.equal(epochs[0], e) for e in epochs[1:])


def test_a_bank_for_another_setting_is_refused(tiny, tmp_path):
    spec, teacher = tiny
    bank = SoftLabelBank(bank_for(spec, teacher, tmp_path / "bank.safetensors"))
    with pytest.raises(ValueError, match=r"num_images: bank 40, run 41.*img_size: bank 32, run 16"):
        bank.check(dataset="shapes", num_images=41, num_classes=2, img_size=16)
    with pytest.raises(ValueError, match=r"teacher: bank 'nano@test', run 'resnet18@pretrained'"):
        bank.check(teacher="resnet18@pretrained")


def test_training_on_a_bank_of_another_dataset_is_refused(tiny, tmp_path):
    spec, teacher = tiny
    path = bank_for(spec, teacher, tmp_path / "bank.safetensors")
    with pytest.raises(ValueError, match=r"dataset: bank 'shapes', run 'digits'"):
        train(TrainConfig(dataset="digits", soft_labels=str(path), epochs=1, progress=False))


def test_training_replays_the_bank_without_a_teacher(tiny, tmp_path, monkeypatch):
    spec, teacher = tiny
    path = bank_for(spec, teacher, tmp_path / "bank.safetensors")
    monkeypatch.setattr("sret_mini.engine.loop.build_teacher", lambda *a, **k: pytest.fail("no teacher needed"))
    result = train(TrainConfig(dataset="shapes", dataset_options=dict(n_train=40, n_test=16), img_size=32,
                               soft_labels=str(path), crops_per_image=4, batch_size=16, epochs=2, progress=False))  # fmt: skip
    assert len(result.history) == 2 and math.isfinite(result.history[-1]["train_loss"])


def test_online_distillation_keeps_the_teacher_frozen(tmp_path, monkeypatch):
    teacher = sret_mini.create_model("sret_nano", num_classes=2, img_size=32)
    path = sret_mini.save_atomic({"model": teacher.state_dict()}, tmp_path / "teacher.pt")
    calls, built = [], []

    def spy(*args, **kwargs):  # the engine's teacher, watched
        model = build_teacher(*args, **kwargs)
        model.register_forward_hook(lambda m, i, o: calls.append((m.training, torch.is_grad_enabled())))
        built.append((model, {k: v.clone() for k, v in model.state_dict().items()}))
        return model

    monkeypatch.setattr("sret_mini.engine.loop.build_teacher", spy)
    train(TrainConfig(dataset="shapes", dataset_options=dict(n_train=64, n_test=16), img_size=32, batch_size=16,
                      epochs=1, teacher="sret_nano", teacher_checkpoint=str(path), progress=False))  # fmt: skip
    assert calls and all(mode == (False, False) for mode in calls)  # eval mode, no gradients
    ((model, before),) = built
    assert not any(p.requires_grad for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # BatchNorm statistics too


def test_a_teacher_without_weights_is_refused_with_the_recipe_to_make_one():
    with pytest.raises(ValueError, match=r"random teacher teaches nothing.*--recipe teacher-digits"):
        build_teacher("resnet18", num_classes=10)


def test_teacher_ids_name_the_checkpoint_by_content(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save({"x": torch.ones(2)}, a)
    torch.save({"x": torch.zeros(2)}, b)
    assert teacher_id("resnet18", str(a)) != teacher_id("resnet18", str(b))
    assert teacher_id("resnet18", str(a)).startswith("resnet18@") and teacher_id("r", pretrained=True) == "r@pretrained"
