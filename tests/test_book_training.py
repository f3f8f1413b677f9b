"""sret_mini.book.training: the helpers of the training chapters (CIFAR, ImageNet)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from sret_mini import RECIPES, TrainConfig
from sret_mini.book import training
from sret_mini.data import load_dataset


def test_recipe_table_has_a_row_per_field_of_the_recipe_with_its_default():
    text = training.recipe_table("imagenet").text
    rows = text.splitlines()[2:]
    assert len(rows) == len(RECIPES["imagenet"])
    assert "| `ema_decay` | 0.99996 | 0.999 |" in text


def test_ema_horizon_is_one_over_one_minus_the_decay():
    assert training.ema_horizon(0.99) == pytest.approx(100)


def test_scale_to_run_keeps_the_shares_of_warm_up_and_ema_horizon():
    full = TrainConfig(**RECIPES["imagenet"])
    full_steps = 1000 * full.epochs
    short = training.scale_to_run(full, steps=300, epochs=3, full_steps=full_steps)
    assert short.epochs == 3
    assert short.warmup_epochs / short.epochs == pytest.approx(full.warmup_epochs / full.epochs)
    share = training.ema_horizon(full.ema_decay) / full_steps
    assert training.ema_horizon(short.ema_decay) / 300 == pytest.approx(share)
    assert (short.lr_base, short.mixup, short.auto_augment) == (full.lr_base, full.mixup, full.auto_augment)


def test_scale_to_run_never_gives_a_negative_decay():
    short = training.scale_to_run(TrainConfig(ema=True, ema_decay=0.9), steps=1, epochs=1, full_steps=10**6)
    assert short.ema_decay == 0.0


def test_extra_emas_copy_the_model_at_the_first_step_then_average_at_their_decay():
    model = torch.nn.Linear(2, 1)
    run = SimpleNamespace(model=model, num_updates=1)
    hook = training.ExtraEmas([0.5])
    hook(run, None)
    ema = hook.emas[0.5].module
    assert torch.equal(ema.weight, model.weight)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(2.0)
    run.num_updates = 2
    hook(run, None)
    assert torch.allclose(ema.weight, before + 1.0)


def test_extra_emas_refuse_to_score_before_any_step():
    with pytest.raises(RuntimeError, match="no step"):
        training.ExtraEmas([0.9]).top1()


def test_write_image_folder_writes_what_load_dataset_reads(tmp_path):
    images = [(Image.new("RGB", (8, 8), (i * 40, 0, 0)), i % 2) for i in range(4)]
    root = training.write_image_folder({"train": images, "val": images[:2]}, tmp_path, ["cat", "dog"])
    spec = load_dataset("imagefolder", root=root, img_size=8)
    assert spec.classes == ["cat", "dog"]
    assert (len(spec.train), len(spec.test)) == (4, 2)
    assert sorted(p.name for p in (root / "train" / "dog").iterdir()) == ["00001.png", "00003.png"]


def test_torchrun_command_on_one_node_is_standalone():
    command = training.torchrun_command(1, 8, "--recipe", "imagenet")
    assert command == "torchrun --nnodes=1 --nproc_per_node=8 --standalone -m sret_mini train --recipe imagenet"


def test_torchrun_command_on_several_nodes_meets_at_a_rendezvous_and_quotes_arguments():
    command = training.torchrun_command(2, 4, "--out", "my runs", job="in1k")
    assert "--standalone" not in command
    assert "--rdzv_backend=c10d --rdzv_endpoint=$MASTER_ADDR:29400 --rdzv_id=in1k" in command
    assert command.endswith("-m sret_mini train --out 'my runs'")
    flags = [w.split("=")[0] for w in command.split() if w.startswith("--rdzv") or w.startswith("--n")]
    assert set(flags) <= set(training.TORCHRUN_FLAGS)


def test_speed_rows_keep_the_models_training_rows_and_accept_a_missing_result():
    assert training.speed_rows(None, "sret_t_cifar") == []
    result = {"results": [
        {"model": "sret_t_cifar", "precision": "bf16", "compiled": True, "batch": 128, "images_per_s": 4321.5},
        {"model": "sret_t_cifar", "mode": "infer", "precision": "bf16", "batch": 128, "images_per_s": 9e3},
        {"model": "sret_t", "precision": "fp32", "batch": 64, "images_per_s": 10.0},
    ]}  # fmt: skip
    assert training.speed_rows(result, "sret_t_cifar") == [("bf16", True, 128, "4,322")]
