"""Training: one call from a notebook, one command from a shell, many GPUs through torchrun::

    from sret_mini.train import TrainConfig, train
    result = train(TrainConfig(epochs=5))       # sret_nano on the digits, on the CPU
    result.history[-1]["test_top1"], result.model

    sret-mini train                             # the same from a shell (also python -m sret_mini.train)
    sret-mini train --recipe cifar --out runs/cifar10
    torchrun --nproc_per_node 8 -m sret_mini.train --recipe imagenet --data-dir /data/imagenet --out runs/in1k

Every run is a function of its config: the data order is seeded by (seed, epoch), each sample's
augmentation by (seed, epoch, index), and a checkpoint holds every random-number-generator state.
So a run stopped at any step (Ctrl-C, `stop_after_steps`) and resumed with `resume=True` ends with
the same weights as one that never stopped (bit for bit on the CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import load_file, save_atomic
from .data import EpochBatchSampler, EpochSeededDataset, default_data_dir, load_dataset, make_loader
from .distill import KDLoss, build_teacher, teacher_id
from .evaluate import autocast, evaluate
from .registry import create_model, list_models
from .softlabels import SoftLabelBank, SoftLabelDataset


@dataclass
class TrainConfig:
    """Everything a training run depends on. The defaults train `sret_nano` on the digits on a CPU.

    `None` means "the dataset's or model's own default" (input size, augmentation, drop path).
    """

    # what to train, on what
    model: str = "sret_nano"
    model_kwargs: dict = field(default_factory=dict)  # more create_model options, e.g. {"shuffle": "none"}
    dataset: str = "digits"
    dataset_options: dict = field(default_factory=dict)  # e.g. {"n_train": 2000} for shapes
    data_dir: str | None = None
    download: bool = True
    img_size: int | None = None
    # optimisation (the learning rate is lr_base * batch_size / 512 unless lr is given)
    epochs: int = 40
    batch_size: int = 64  # global: split over the processes of a distributed run
    lr: float | None = None
    lr_base: float = 4e-3
    opt: str = "adamw"
    weight_decay: float = 0.05
    sched: str = "cosine"
    warmup_epochs: float = 3
    warmup_lr: float = 1e-6
    min_lr: float = 1e-5
    clip_grad: float | None = None
    label_smoothing: float = 0.1
    drop_path: float | None = None
    ema: bool = False
    ema_decay: float = 0.999
    # augmentation (timm): None keeps the dataset's defaults
    augment: bool | None = None
    crop_scale: tuple[float, float] | None = None
    hflip: float | None = None
    auto_augment: str | None = None  # e.g. "rand-m9-mstd0.5-inc1" (RandAugment)
    color_jitter: float = 0.0  # brightness/contrast/saturation strength (timm drops it under RandAugment)
    re_prob: float = 0.0  # random erasing
    mixup: float = 0.0
    cutmix: float = 0.0
    # distillation (sret_mini.distill): an online teacher, or a soft-label bank (sret_mini.softlabels)
    teacher: str | None = None  # a timm / sret_mini model name
    teacher_checkpoint: str | None = None
    teacher_pretrained: bool = False  # timm's pretrained weights (needs network)
    teacher_kwargs: dict = field(default_factory=dict)
    kd_temperature: float = 1.0
    kd_hard_weight: float = 0.0  # 0: soft labels only, as the authors
    soft_labels: str | None = None  # a bank file: replay its crops, no teacher forward pass
    crops_per_image: int = 4  # replayed crops per loaded image (batch_size counts crops)
    # speed
    device: str = "auto"
    amp: str = "auto"  # "auto" (bf16 on GPUs that have it, else fp16; none on CPU), "bf16", "fp16", "none"
    compile: bool = False
    channels_last: bool = False
    grad_checkpointing: bool = False
    num_workers: int = 0
    # bookkeeping
    seed: int = 0
    out: str | None = None  # receives config.json, metrics.jsonl, last.pt, best.pt
    resume: bool = False  # continue the run saved in `out`
    stop_after_steps: int | None = None  # stop (resumably) after this many optimizer steps in total
    progress: bool = True

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else self.lr_base * self.batch_size / 512


# Named recipes: overrides of the defaults. "imagenet" is the paper's (DeiT-style training with the
# authors' larger learning rate, 0.001 x batch / 512, and 30 warm-up epochs; sret_facts.md).
RECIPES: dict[str, dict] = {
    "digits": {},
    # an offline teacher for distillation on the digits (no hub model was trained on them)
    "teacher-digits": dict(model="resnet18", epochs=30),
    "cifar": dict(
        model="sret_t_cifar", dataset="cifar10", epochs=200, batch_size=128, lr_base=4e-3, warmup_epochs=10,
        weight_decay=0.05, label_smoothing=0.1, drop_path=0.1, auto_augment="rand-m9-mstd0.5-inc1",
        re_prob=0.25, mixup=0.8, cutmix=1.0, num_workers=4,
    ),
    "imagenet": dict(
        model="sret_t", dataset="imagefolder", epochs=300, batch_size=1024, lr_base=1e-3, warmup_epochs=30,
        warmup_lr=1e-6, min_lr=1e-5, weight_decay=0.05, label_smoothing=0.1, drop_path=0.1,
        auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, mixup=0.8, cutmix=1.0, crop_scale=(0.08, 1.0),
        hflip=0.5, ema=True, ema_decay=0.99996, num_workers=8,
    ),
}  # fmt: skip

# fields that may change between a run and its resumption
RESUMABLE_CHANGES = {"resume", "progress", "num_workers", "stop_after_steps", "out", "data_dir", "download", "device"}


@dataclass
class TrainResult:
    history: list[dict]  # one dict per epoch (the lines of metrics.jsonl)
    model: torch.nn.Module  # the trained model (in eval mode)
    ema: torch.nn.Module | None = None  # its exponential moving average, if ema=True
    stopped: str | None = None  # "ctrl-c" or "stop_after_steps" if the run stopped early (resume=True continues)
    out: Path | None = None

    @property
    def interrupted(self) -> bool:
        return self.stopped is not None


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; training stops before the bad step is applied."""


# ---------------------------------------------------------------------------------------------
# random-number-generator state, in a form torch.load(weights_only=True) accepts


def rng_state() -> dict:
    np_kind, np_keys, np_pos, np_gauss, np_cached = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(keys=torch.from_numpy(np_keys.astype(np.int64)), pos=np_pos, has_gauss=np_gauss, cached=np_cached),
        python=random.getstate(),
    )
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class StopRequest:
    """Turns Ctrl-C (SIGINT) into a request the loop honours after the current step.

    Stopping between steps keeps every saved tensor consistent; a second Ctrl-C stops at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step and saving (Ctrl-C again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# ---------------------------------------------------------------------------------------------


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU computes in bf16 natively (compute capability 8.0 or newer: A100, H100, ...).

    `torch.cuda.is_bf16_supported()` also says yes for older GPUs (a T4) that only emulate it,
    slowly; mixed precision there should be fp16.
    """
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_amp(amp: str, device: torch.device) -> str:
    """The mixed precision of `amp` on `device`: "auto" is bf16 on GPUs with native bf16, fp16 on
    older GPUs, none on the CPU."""
    if amp == "auto":
        if device.type != "cuda":
            return "none"
        return "bf16" if native_bf16(device) else "fp16"
    if amp not in ("bf16", "fp16", "none"):
        raise ValueError(f"amp={amp!r}: choose 'auto', 'bf16', 'fp16' or 'none'")
    return amp


def _check_resumable(saved: dict, cfg: TrainConfig) -> None:
    now = asdict(cfg)
    differ = {
        k: (saved.get(k), now[k]) for k in now if k not in RESUMABLE_CHANGES and _norm(saved.get(k)) != _norm(now[k])
    }
    if differ:
        raise ValueError(
            f"cannot resume: the run in {cfg.out} was made with other settings {differ} (saved, now). "
            "Resume with the same settings, or start a new run with another --out."
        )


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def _history_lines(history: list[dict]) -> str:
    return "".join(json.dumps(h) + "\n" for h in history)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def train(cfg: TrainConfig | None = None, *, model: torch.nn.Module | None = None, epoch_hook=None,
          **overrides) -> TrainResult:  # fmt: skip
    """Train a model as `cfg` (plus `overrides`) says; returns the history and the trained model.

    `model`: train this module instead of creating `cfg.model` by name (then `cfg.model` is only a
    label). `epoch_hook(epoch, model)`: called before every epoch (0-based), e.g. to move a schedule
    such as `sret_mini.reparam.JoiningSchedule` along.

    Example:
        >>> result = train(TrainConfig(epochs=2, progress=False))
        >>> sorted(result.history[-1])[:3]
        ['epoch', 'images_per_s', 'lr']
    """
    cfg = dataclasses.replace(cfg or TrainConfig(), **overrides)
    dist = distributed.setup(cfg.device)
    try:
        return _train(cfg, dist, model, epoch_hook)
    finally:
        distributed.teardown()


def _train(cfg: TrainConfig, dist: distributed.Dist, model=None, epoch_hook=None) -> TrainResult:
    device, main = dist.device, dist.is_main
    amp = resolve_amp(cfg.amp, device)
    out = Path(cfg.out) if cfg.out else None
    if cfg.resume and not (out and (out / "last.pt").is_file()):
        raise FileNotFoundError(f"resume=True but there is no checkpoint {out}/last.pt to resume from")
    seed_everything(cfg.seed + dist.rank)

    # data ------------------------------------------------------------------------------------
    spec = load_dataset(cfg.dataset, root=cfg.data_dir, img_size=cfg.img_size, download=cfg.download,
                        **cfg.dataset_options)  # fmt: skip
    img_size = cfg.img_size or spec.img_size
    train_tf = spec.transform(True, img_size, augment=cfg.augment, scale=cfg.crop_scale, hflip=cfg.hflip,
                              auto_augment=cfg.auto_augment, color_jitter=cfg.color_jitter,
                              re_prob=cfg.re_prob or None)  # fmt: skip
    augmenting = cfg.augment if cfg.augment is not None else spec.augment.get("augment", True)
    train_set = EpochSeededDataset(spec.train, train_tf, seed=cfg.seed, random=augmenting)
    test_set = EpochSeededDataset(spec.test, spec.transform(False, img_size), random=False)
    images_per_step = cfg.batch_size
    if cfg.soft_labels:  # replay a bank: its stored crops replace the augmentation
        if cfg.mixup or cfg.cutmix:
            raise ValueError("mixup/cutmix cannot be combined with --soft-labels: the stored labels are per crop")
        if cfg.batch_size % cfg.crops_per_image:
            raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of crops_per_image {cfg.crops_per_image}")
        bank = SoftLabelBank(cfg.soft_labels)
        wanted_teacher = (
            teacher_id(cfg.teacher, cfg.teacher_checkpoint, cfg.teacher_pretrained) if cfg.teacher else None
        )
        bank.check(dataset=spec.name, num_images=len(spec.train), num_classes=spec.num_classes, img_size=img_size,
                   teacher=wanted_teacher)  # fmt: skip
        train_set = SoftLabelDataset(spec.train, bank, cfg.crops_per_image, seed=cfg.seed)
        images_per_step = cfg.batch_size // cfg.crops_per_image
    sampler = EpochBatchSampler(len(train_set), images_per_step, shuffle=True, drop_last=True, seed=cfg.seed,
                                rank=dist.rank, world_size=dist.world_size)  # fmt: skip
    test_sampler = EpochBatchSampler(len(test_set), cfg.batch_size, shuffle=False, drop_last=False,
                                     rank=dist.rank, world_size=dist.world_size)  # fmt: skip
    pin = device.type == "cuda"
    train_loader = make_loader(train_set, sampler, cfg.num_workers, pin)
    test_loader = make_loader(test_set, test_sampler, cfg.num_workers, pin)

    # model, optimiser, schedule ------------------------------------------------------------------
    if model is None:
        kwargs = dict(num_classes=spec.num_classes, img_size=img_size) if cfg.model in list_models() else {}
        kwargs.setdefault("num_classes", spec.num_classes)
        if cfg.drop_path is not None:
            kwargs["drop_path_rate"] = cfg.drop_path
        kwargs.update(cfg.model_kwargs)  # the caller's options win
        model = create_model(cfg.model, **kwargs)
    model = model.to(device)
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema else None
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = sampler.steps_per_epoch()
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
        warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr, step_on_epochs=False, updates_per_epoch=steps_per_epoch,
    )  # fmt: skip
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing,
                      num_classes=spec.num_classes)  # fmt: skip
    criterion = SoftTargetCrossEntropy() if mixup else torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    teacher = None
    if cfg.teacher and not cfg.soft_labels:
        teacher_kwargs = dict(img_size=img_size) if cfg.teacher in list_models() else {}
        teacher_kwargs.update(cfg.teacher_kwargs)
        teacher = build_teacher(cfg.teacher, spec.num_classes, cfg.teacher_checkpoint, cfg.teacher_pretrained,
                                **teacher_kwargs).to(device)  # fmt: skip
    distill = KDLoss(cfg.kd_temperature, cfg.kd_hard_weight) if teacher is not None or cfg.soft_labels else None

    # resume ------------------------------------------------------------------------------------
    start_epoch, start_step, num_updates, best, history = 0, 0, 0, -1.0, []
    partial = dict(loss=0.0, correct=0.0, seen=0, seconds=0.0)
    if cfg.resume:
        state = load_file(out / "last.pt")
        _check_resumable(state["config"], cfg)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.module.load_state_dict(state["ema"])
        start_epoch, start_step, num_updates = state["epoch"], state["step"], state["num_updates"]
        best, history, partial = state["best_top1"], list(state["history"]), dict(state["partial"])
        set_rng_state(state["rng"][dist.rank] if dist.rank < len(state["rng"]) else state["rng"][0])
    if main and out:
        out.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")

    def checkpoint(epoch: int, step: int) -> None:
        """Save everything a resumed run needs (on the main process; RNG states from every rank)."""
        states = [rng_state()]
        if dist.enabled:
            states = [None] * dist.world_size
            torch.distributed.all_gather_object(states, rng_state())
        if not (main and out):
            return
        save_atomic(
            dict(model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                 scaler=scaler.state_dict() if scaler else None, ema=ema.module.state_dict() if ema else None,
                 epoch=epoch, step=step, num_updates=num_updates, best_top1=best, history=history,
                 partial=partial, rng=states, config=asdict(cfg)),
            out / "last.pt",
        )  # fmt: skip

    net = (
        DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if dist.enabled
        else model
    )
    if cfg.compile:
        net = torch.compile(net)

    # the loop ----------------------------------------------------------------------------------
    stopped = None
    with StopRequest() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            if epoch_hook is not None:
                epoch_hook(epoch, model)
            sampler.set_epoch(epoch, start_step)
            model.train()
            tic = time.perf_counter()
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (main and cfg.progress),
                       leave=False, dynamic_ncols=True)  # fmt: skip
            for step, batch in enumerate(bar, start=start_step):
                images, labels, soft = (*batch, None)[:3]
                if soft is not None:  # replayed crops: (B, m, ...) -> (B * m, ...)
                    images, labels, soft = images.flatten(0, 1), labels.flatten(0, 1), soft.flatten(0, 1).to(device)
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                if cfg.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                targets = labels
                if mixup is not None:
                    images, targets = mixup(images, labels)
                with autocast(device, amp):
                    logits = net(images)
                    if soft is not None:
                        loss = distill(logits.float(), teacher_probs=soft, labels=labels)
                    elif teacher is not None:
                        with torch.no_grad():
                            teacher_logits = teacher(images)
                        loss = distill(logits.float(), teacher_logits.float(), labels=targets)
                    else:
                        loss = criterion(logits, targets)

                flags = distributed.all_sum(torch.tensor([float(not torch.isfinite(loss)), float(stop.requested)]))
                if flags[0] > 0:
                    raise NonFiniteLoss(
                        f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                        f"(learning rate {optimizer.param_groups[0]['lr']:.2e}); nothing of this step was applied"
                        f"{f' and the last good checkpoint is {out}/last.pt' if out else ''}. Lower the learning "
                        "rate (--lr), clip gradients (--clip-grad 1.0), or check the data for NaNs."
                    )
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if cfg.clip_grad:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                num_updates += 1
                scheduler.step_update(num_updates)
                if ema is not None:
                    ema.update(model, step=num_updates)

                n = len(labels)
                partial["loss"] += loss.item() * n
                partial["correct"] += (logits.argmax(-1) == labels).sum().item()
                partial["seen"] += n
                if main and cfg.progress:
                    seconds = partial["seconds"] + time.perf_counter() - tic
                    bar.set_postfix(loss=f"{partial['loss'] / partial['seen']:.3f}",
                                    acc=f"{100 * partial['correct'] / partial['seen']:.1f}",
                                    img_s=f"{partial['seen'] * dist.world_size / seconds:.0f}")  # fmt: skip
                budget_spent = cfg.stop_after_steps is not None and num_updates >= cfg.stop_after_steps
                if flags[1] > 0 or budget_spent:
                    partial["seconds"] += time.perf_counter() - tic
                    checkpoint(epoch, step + 1)
                    stopped = "ctrl-c" if flags[1] > 0 else "stop_after_steps"
                    break
            if stopped:
                break

            # end of epoch: evaluate, record, save
            train_seconds = partial["seconds"] + time.perf_counter() - tic
            stats = evaluate(net, test_loader, device, amp, cfg.channels_last)
            totals = distributed.all_sum(torch.tensor([partial["loss"], partial["correct"], partial["seen"]],
                                                      dtype=torch.float64))  # fmt: skip
            record = dict(
                epoch=epoch + 1, step=num_updates, train_loss=totals[0].item() / totals[2].item(),
                train_top1=100 * totals[1].item() / totals[2].item(), test_loss=stats["loss"],
                test_top1=stats["top1"], test_top5=stats["top5"], lr=optimizer.param_groups[0]["lr"],
                images_per_s=totals[2].item() / train_seconds, seconds=time.perf_counter() - tic,
            )  # fmt: skip
            if ema is not None:
                record["ema_test_top1"] = evaluate(ema.module, test_loader, device, amp, cfg.channels_last)["top1"]
            history.append(record)
            start_step, partial = 0, dict(loss=0.0, correct=0.0, seen=0, seconds=0.0)
            improved = record["test_top1"] > best
            best = max(best, record["test_top1"])
            checkpoint(epoch + 1, 0)
            if main and out:
                _write_text_atomic(out / "metrics.jsonl", _history_lines(history))
                if improved:
                    save_atomic(dict(model=model.state_dict(), ema=ema.module.state_dict() if ema else None,
                                     epoch=epoch + 1, test_top1=record["test_top1"], config=asdict(cfg)),
                                out / "best.pt")  # fmt: skip
            if main and cfg.progress:
                tqdm.write(
                    f"epoch {epoch + 1}/{cfg.epochs}  train loss {record['train_loss']:.3f}  "
                    f"test loss {record['test_loss']:.3f}  test top-1 {record['test_top1']:.2f}%  "
                    f"{record['images_per_s']:.0f} img/s  {record['seconds']:.1f} s"
                )
    model.eval()
    if main and stopped:
        where = f"saved {out}/last.pt; continue with resume=True (--resume)" if out else "no --out: nothing saved"
        print(f"stopped ({stopped}) after {num_updates} optimizer steps: {where}", file=sys.stderr)
    return TrainResult(history, model, ema.module if ema else None, stopped, out)


def offline_teacher(out: str | Path | None = None, model: str = "resnet18", dataset: str = "digits",
                    epochs: int = 30, progress: bool = False, **overrides) -> Path:  # fmt: skip
    """A teacher for the offline data, trained unless a finished run with these settings exists.

    No hub model was trained on the digits, so the distillation chapter and benchmark train their own
    teacher (a timm ResNet-18 by default) with sret_mini's engine, once, into
    `<data dir>/teachers/<model>-<dataset>/` ("load or train"; a run made with other settings is
    trained again). Prints which it did. Returns the path of the final checkpoint (`last.pt`: the
    weights after the last epoch; `best.pt` is chosen by test accuracy, which a teacher must not be).
    """
    out = Path(out) if out is not None else default_data_dir() / "teachers" / f"{model}-{dataset}"
    cfg = TrainConfig(model=model, dataset=dataset, epochs=epochs, out=str(out), progress=progress, **overrides)
    final, saved = out / "last.pt", out / "config.json"
    wanted = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(cfg))).items() if k not in RESUMABLE_CHANGES}
    if final.is_file() and saved.is_file():
        have = {k: v for k, v in json.loads(saved.read_text()).items() if k not in RESUMABLE_CHANGES}
        if have == wanted and torch.load(final, weights_only=True)["epoch"] == epochs:
            print(f"teacher: loaded {final}")
            return final
    train(cfg)
    print(f"teacher: trained {final}")
    return final


# ---------------------------------------------------------------------------------------------
# command line: every TrainConfig field is a flag (--batch-size 128, --no-compile, --crop-scale 0.5 1)


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    flag = "--" + f.name.replace("_", "-")
    kind = str(f.type)
    if kind.startswith("bool"):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
    elif kind.startswith("dict"):
        parser.add_argument(flag, type=json.loads, default=None, metavar="JSON")
    elif kind.startswith("tuple"):
        parser.add_argument(flag, type=float, nargs=2, default=None, metavar=("LOW", "HIGH"))
    else:
        base = kind.split("|")[0].strip()
        parser.add_argument(flag, type={"int": int, "float": float}.get(base, str), default=None)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """A TrainConfig from command-line flags: the recipe's values, then the flags given."""
    parser = argparse.ArgumentParser(prog="sret-mini train", description="Train an SReT (or any timm) model.")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="digits",
                        help="named settings to start from (default: digits, the embedded default)")  # fmt: skip
    for f in dataclasses.fields(TrainConfig):
        _add_field(parser, f)
    args = vars(parser.parse_args(argv))
    values = dict(RECIPES[args.pop("recipe")])
    values.update({k: v for k, v in args.items() if v is not None})
    for key in ("crop_scale",):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> TrainResult:
    result = train(parse_args(argv))
    if result.history and int(os.environ.get("RANK", "0")) == 0:
        last, best = result.history[-1], max(h["test_top1"] for h in result.history)
        print(f"epoch {last['epoch']}: test top-1 {last['test_top1']:.2f}% (best {best:.2f}%), "
              f"{sum(h['seconds'] for h in result.history):.0f} s in epochs"
              f"{f'; run in {result.out}' if result.out else ''}")  # fmt: skip
    if result.stopped == "ctrl-c":
        sys.exit(130)  # the shell's convention for "interrupted"
    return result


if __name__ == "__main__":  # python -m sret_mini.train, the form torchrun launches
    from .command import run

    run("sret-mini train", main, sys.argv[1:])
