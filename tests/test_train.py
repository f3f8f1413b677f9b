"""The training engine: results and files, exact resumption, guards, recipes and the command line."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import sret_mini
from sret_mini import RECIPES, TrainConfig, train
from sret_mini.book import plot_history, read_metrics
from sret_mini.cli import parse_args
from sret_mini.engine.loop import NonFiniteLoss

# 256 shapes images of 32 px: a fast dataset for checking the machinery (not accuracy)
QUICK = dict(dataset="shapes", dataset_options=dict(n_train=256, n_test=64), img_size=32, batch_size=32,
             epochs=2, progress=False)  # fmt: skip


def test_train_returns_the_history_and_the_trained_model(tmp_path):
    result = train(TrainConfig(**QUICK, out=str(tmp_path)))
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert isinstance(result.model, sret_mini.SReT) and not result.model.training
    assert not result.interrupted and result.ema is None


def test_a_run_folder_holds_metrics_config_and_checkpoints(tmp_path):
    result = train(TrainConfig(**QUICK, out=str(tmp_path)))
    lines = read_metrics(tmp_path)
    assert lines == result.history
    for key in ("epoch", "train_loss", "test_loss", "test_top1", "images_per_s", "seconds"):
        assert all(isinstance(line[key], (int, float)) for line in lines), key
    assert 0 <= lines[-1]["test_top1"] <= 100  # percent
    assert json.loads((tmp_path / "config.json").read_text())["dataset"] == "shapes"
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "ema", "rng", "config", "epoch", "step"):
        assert key in last, key
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["test_top1"] == max(h["test_top1"] for h in result.history)
    assert not list(tmp_path.glob("*.tmp"))


def test_ema_weights_are_evaluated_alongside(tmp_path):
    result = train(TrainConfig(**QUICK, ema=True, ema_decay=0.9))
    assert "ema_test_top1" in result.history[-1] and result.ema is not None


def test_a_resumed_run_ends_with_the_same_weights_bit_for_bit(tmp_path):
    # every source of randomness on: augmentation, mixup/cutmix, drop path, EMA
    cfg = TrainConfig(dataset="digits", epochs=2, batch_size=32, drop_path=0.1, ema=True, mixup=0.4, cutmix=0.4,
                      auto_augment="rand-m5-mstd0.5", re_prob=0.25, progress=False)  # fmt: skip
    whole = train(cfg, out=str(tmp_path / "whole"))
    steps_per_epoch = 1437 // 32
    first = train(cfg, out=str(tmp_path / "split"), stop_after_steps=steps_per_epoch + 7)  # mid-epoch 2
    assert first.stopped == "stop_after_steps" and len(first.history) == 1
    rest = train(cfg, out=str(tmp_path / "split"), resume=True)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, rest.model.state_dict()[name]), name
    for name, tensor in whole.ema.state_dict().items():
        assert torch.equal(tensor, rest.ema.state_dict()[name]), name
    assert [h["train_loss"] for h in whole.history] == [h["train_loss"] for h in rest.history]


def test_resuming_with_other_settings_is_refused(tmp_path):
    train(TrainConfig(**QUICK, out=str(tmp_path), stop_after_steps=3))
    with pytest.raises(ValueError, match=r"cannot resume.*'lr_base'"):
        train(TrainConfig(**QUICK, out=str(tmp_path), resume=True, lr_base=1e-2))


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(TrainConfig(**QUICK, out=str(tmp_path), resume=True))


def test_a_non_finite_loss_stops_the_run_with_advice(tmp_path):
    with pytest.raises(NonFiniteLoss, match=r"the loss became (nan|inf).*Lower the learning rate") as error:
        train(TrainConfig(**{**QUICK, "epochs": 20}, lr=1e6, warmup_epochs=0, out=str(tmp_path)))
    # the message names a last good checkpoint only if one was written
    assert ("last.pt" in str(error.value)) == (tmp_path / "last.pt").is_file()


def test_parameters_named_by_no_weight_decay_get_none():
    from timm.optim import create_optimizer_v2

    model = sret_mini.create_model("sret_nano")
    optimizer = create_optimizer_v2(model, opt="adamw", lr=1e-3, weight_decay=0.05)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.pos_embed) not in decayed and id(model.stages[0].blocks[0].attn.qkv.weight) in decayed


def test_the_imagenet_recipe_is_the_papers():
    cfg = parse_args(["--recipe", "imagenet", "--data-dir", "/data/imagenet"])
    assert (cfg.model, cfg.opt, cfg.sched, cfg.epochs, cfg.warmup_epochs) == ("sret_t", "adamw", "cosine", 300, 30)
    assert cfg.learning_rate == pytest.approx(0.001 * cfg.batch_size / 512)
    assert (cfg.weight_decay, cfg.label_smoothing, cfg.mixup, cfg.cutmix) == (0.05, 0.1, 0.8, 1.0)
    assert cfg.auto_augment.startswith("rand-m9") and cfg.drop_path == 0.1 and cfg.ema


def test_command_line_flags_override_any_field():
    cfg = parse_args(["--recipe", "cifar", "--epochs", "3", "--no-ema", "--crop-scale", "0.5", "1",
                      "--model-kwargs", '{"shuffle": "none"}', "--compile"])  # fmt: skip
    assert cfg.epochs == 3 and cfg.ema is False and cfg.crop_scale == (0.5, 1.0) and cfg.compile
    assert cfg.model_kwargs == {"shuffle": "none"} and cfg.model == RECIPES["cifar"]["model"]


def test_speed_options_train_too():
    result = train(TrainConfig(**QUICK, channels_last=True, grad_checkpointing=True, amp="bf16", clip_grad=1.0))
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)


def test_plot_history_draws_loss_and_accuracy(tmp_path):
    train(TrainConfig(**QUICK, out=str(tmp_path)))
    figure = plot_history(tmp_path)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]


def _cli(*args, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "sret_mini", *args], capture_output=True, text=True, env=env, **kwargs)


def test_the_command_line_trains_and_evaluates(tmp_path):
    run = _cli("train", "--dataset", "shapes", "--dataset-options", '{"n_train": 128, "n_test": 32}',
               "--img-size", "32", "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path), "--no-progress")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "best.pt").is_file() and len(read_metrics(tmp_path)) == 1
    evaluated = _cli("eval", "--checkpoint", str(tmp_path / "best.pt"))
    assert evaluated.returncode == 0, evaluated.stderr
    figures = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert {"top1", "top5", "images_per_s"} <= set(figures)
    assert figures["top1"] == pytest.approx(read_metrics(tmp_path)[-1]["test_top1"], abs=1e-3)


def test_the_command_line_reports_bad_input_without_a_traceback():
    run = _cli("train", "--dataset", "mnist")
    assert run.returncode == 2 and "error: unknown dataset 'mnist'" in run.stderr and "Traceback" not in run.stderr


def test_ctrl_c_saves_a_resumable_checkpoint_before_exiting(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = [sys.executable, "-m", "sret_mini", "train", "--epochs", "50", "--out", str(tmp_path), "--no-progress"]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").exists() and time.time() < deadline:  # the first epoch ended
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "saved" in stderr and "Traceback" not in stderr
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] >= 1 and state["num_updates"] > 0
    resumed = train(TrainConfig(out=str(tmp_path), resume=True, epochs=50, progress=False,
                                stop_after_steps=state["num_updates"] + 2))  # fmt: skip
    assert resumed.stopped == "stop_after_steps"


def test_the_command_line_evaluates_a_file_in_the_authors_layout(tmp_path):
    result = train(TrainConfig(**QUICK))
    path = tmp_path / "official.pth"
    torch.save({"model": sret_mini.to_official(result.model.state_dict())}, path)
    run = _cli("eval", "--checkpoint", str(path), "--model", "sret_nano", "--dataset", "shapes", "--img-size", "32")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["images"] == 1000  # the default shapes test set


def test_train_takes_a_ready_made_model_and_calls_the_epoch_hook():
    from sret_mini.reparam import JoiningSchedule, create_branched, joining

    model = create_branched(depth=2, branches=2, dim=32, heads=2, num_classes=2, img_size=32, patch_size=8)
    schedule, seen = JoiningSchedule(model), []

    def hook(epoch, net):
        schedule.step(epoch / 4)
        seen.append((epoch, joining(net)))

    result = train(TrainConfig(**{**QUICK, "epochs": 4}, model="branched vit"), model=model, epoch_hook=hook)
    assert result.model is model and [e for e, _ in seen] == [0, 1, 2, 3]
    assert [lam for _, lam in seen] == sorted(lam for _, lam in seen)  # the schedule moved forward


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_mixed_precision_is_bf16_only_where_the_gpu_has_it(monkeypatch, capability, expected):
    # a T4 (7.5) reports bf16 as "supported" through emulation; it should train in fp16
    from sret_mini.engine.precision import resolve_amp

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_amp("auto", torch.device("cuda")) == expected
    assert resolve_amp("auto", torch.device("cpu")) == "none"
    assert resolve_amp("fp16", torch.device("cuda")) == "fp16"


def test_the_step_hook_sees_every_optimizer_step():
    seen = []

    def hook(run, loss):
        seen.append((run.num_updates, loss.item(), run.model.training))

    result = train(TrainConfig(**QUICK), step_hook=hook)
    assert [n for n, _, _ in seen] == list(range(1, result.history[-1]["step"] + 1))
    assert all(training and loss == loss for _, loss, training in seen)  # finite losses, in training mode
