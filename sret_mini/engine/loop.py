"""Training: one call from a notebook, one command from a shell, many GPUs through torchrun::

    from sret_mini import TrainConfig, train
    result = train(TrainConfig(epochs=5))       # sret_nano on the digits, on the CPU
    result.history[-1]["test_top1"], result.model

    sret-mini train                             # the same from a shell (also python -m sret_mini train)
    sret-mini train --recipe cifar --out runs/cifar10
    torchrun --nproc_per_node 8 -m sret_mini train --recipe imagenet --data-dir /data/imagenet --out runs/in1k

`train` reads top to bottom as the steps of a run: the data; the model, its optimiser and schedule;
then, epoch after epoch, the steps of one epoch and the epoch's end (evaluate, record, save). What
the run holds while it trains lives in one object, `Run`, which hooks receive.

The labels may be one class per image, one per token (logits (B, N, C) from a model with
global_pool="": the loss and accuracy are over tokens), or one per step (`arrows`): the final
output is trained and scored on the last step, and with `application_loss` every application is
trained on its own step too (`supervised_loss`); the accuracy reported is the final output's.

Every run is a function of its config: the data order is seeded by (seed, epoch), each sample's
augmentation by (seed, epoch, index), and a checkpoint holds every random-number-generator state.
So a run stopped at any step (Ctrl-C, `stop_after_steps`) and resumed with `resume=True` ends with
the same weights as one that never stopped (bit for bit on the CPU). The run folder's guarantees
are in `sret_mini.engine.run_folder`; the command line is in `sret_mini.cli`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from einops import reduce
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..data import EpochBatchSampler, EpochSeededDataset, load_dataset, make_loader
from ..distill import KDLoss, SoftLabelBank, SoftLabelDataset, build_teacher, teacher_id
from ..registry import create_model, list_models
from . import distributed
from .checkpoint import load_file, save_atomic
from .evaluate import evaluate, final_labels, label_steps
from .files import write_text
from .precision import autocast, resolve_amp
from .run_folder import RunFolder, best_checkpoint, history_lines, repair
from .seeding import rng_state, seed_everything, set_rng_state
from .train_config import TrainConfig, check_resumable

__all__ = ["NonFiniteLoss", "Run", "TrainResult", "train"]

#: steps between two updates of the progress bar (each reads the running loss back from the GPU)
LOG_EVERY = 10


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


@dataclass
class Run:
    """What a run holds while it trains: its tools, and the state a checkpoint saves.

    `partial` is the epoch so far: the summed loss and correct predictions stay on the device (the
    loop reads them back only for the progress bar and at the epoch's end), `seen` and `seconds`.
    """

    cfg: TrainConfig
    dist: distributed.Dist
    amp: str
    out: Path | None
    # data
    img_size: int
    num_classes: int
    train_loader: torch.utils.data.DataLoader
    test_loader: torch.utils.data.DataLoader
    sampler: EpochBatchSampler
    replay: bool  # batches are replayed crops of a soft-label bank: (images, labels, soft labels)
    # model and optimisation
    model: torch.nn.Module
    net: torch.nn.Module  # the model as training calls it: wrapped by DDP, compiled (see `wrap`)
    eval_net: torch.nn.Module  # the model as evaluation calls it
    ema: ModelEmaV3 | None
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler | None
    mixup: Mixup | None
    criterion: torch.nn.Module
    teacher: torch.nn.Module | None
    distill: KDLoss | None
    # where the run is
    epoch: int = 0  # epochs completed
    start_step: int = 0  # steps of the current epoch done before a resume
    num_updates: int = 0
    best: float = -1.0  # best test top-1 so far
    history: list[dict] = field(default_factory=list)
    partial: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def new_epoch(self) -> None:
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        self.partial = dict(loss=zero.clone(), correct=zero.clone(), seen=0, seconds=0.0)


def train(cfg: TrainConfig | None = None, *, model: torch.nn.Module | None = None,
          epoch_hook: Callable | None = None, step_hook: Callable | None = None, **overrides) -> TrainResult:  # fmt: skip
    """Train a model as `cfg` (plus `overrides`) says; returns the history and the trained model.

    `model`: train this module instead of creating `cfg.model` by name (then `cfg.model` is only a
    label). `epoch_hook(epoch, model)`: called before every epoch (0-based), e.g. to move a schedule
    such as `sret_mini.reparam.JoiningSchedule` along. `step_hook(run, loss)`: called after every
    optimizer step with the `Run` and the step's loss (a tensor on the device: reading it with
    `.item()` waits for the GPU).

    Example:
        >>> result = train(TrainConfig(epochs=2, progress=False))
        >>> sorted(result.history[-1])[:3]
        ['epoch', 'images_per_s', 'lr']
    """
    cfg = dataclasses.replace(cfg or TrainConfig(), **overrides)
    dist = distributed.setup(cfg.device)
    try:
        # the main process holds the run folder: one run at a time, none replaced by accident
        with RunFolder(cfg.out, cfg.resume, cfg.overwrite) if cfg.out and dist.is_main else contextlib.nullcontext():
            run = prepare(cfg, dist, model)
            return loop(run, epoch_hook, step_hook)
    finally:
        distributed.teardown()


def prepare(cfg: TrainConfig, dist: distributed.Dist, model: torch.nn.Module | None = None) -> Run:
    """Everything before the first step: data, model, optimiser and schedule, teacher; a resume."""
    out = Path(cfg.out) if cfg.out else None
    if cfg.resume and not (out and (out / "last.pt").is_file()):
        raise FileNotFoundError(f"resume=True but there is no checkpoint {out}/last.pt to resume from")
    seed_everything(cfg.seed + dist.rank)
    data = build_data(cfg, dist)
    model = build_model(cfg, data.num_classes, data.img_size, dist.device, model)
    amp = resolve_amp(cfg.amp, dist.device)
    opt = build_optimisation(cfg, model, data.num_classes, data.sampler.steps_per_epoch(), amp)
    teacher, distill = build_teacher_of(cfg, data.num_classes, data.img_size, dist.device)
    run = Run(
        cfg=cfg, dist=dist, amp=amp, out=out,
        img_size=data.img_size, num_classes=data.num_classes, train_loader=data.train_loader,
        test_loader=data.test_loader, sampler=data.sampler, replay=data.replay,
        model=model, net=model, eval_net=model, ema=opt.ema, optimizer=opt.optimizer, scheduler=opt.scheduler,
        scaler=opt.scaler, mixup=opt.mixup, criterion=opt.criterion,
        teacher=teacher, distill=distill,
    )  # fmt: skip
    run.new_epoch()
    if cfg.resume:
        resume(run)
    if dist.is_main and out:
        write_text(out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
    run.net, run.eval_net = wrap(cfg, dist, model)
    return run


class Applications(torch.nn.Module):
    """`model.forward_applications` as a module, so that DDP and torch.compile wrap it as they wrap a model."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.forward_applications(images)  # (A, B, C) or (A, B, N, C)


def wrap(cfg: TrainConfig, dist: distributed.Dist, model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The model as training calls it and as evaluation calls it: wrapped by DDP, compiled.

    With application_loss training calls every application (`Applications`) and evaluation the
    model itself (compiled too; no DDP, which only gradients need).
    """
    net = Applications(model) if cfg.application_loss else model
    if dist.enabled:
        net = DistributedDataParallel(net, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    if not cfg.application_loss:
        return net, net
    return net, torch.compile(model) if cfg.compile else model


@dataclass
class Data:
    """What `build_data` makes: the loaders, the training sampler, and what the model must fit."""

    img_size: int
    num_classes: int
    train_loader: torch.utils.data.DataLoader
    test_loader: torch.utils.data.DataLoader
    sampler: EpochBatchSampler
    replay: bool


@dataclass
class Optimisation:
    """What `build_optimisation` makes: optimiser, schedule, loss scaler, EMA, mixup and the loss."""

    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler | None
    ema: ModelEmaV3 | None
    mixup: Mixup | None
    criterion: torch.nn.Module


def build_data(cfg: TrainConfig, dist: distributed.Dist) -> Data:
    """The loaders (each process its share), the sampler, and what the model must fit."""
    spec = load_dataset(cfg.dataset, root=cfg.data_dir, img_size=cfg.img_size, download=cfg.download,
                        **cfg.dataset_options)  # fmt: skip
    img_size = cfg.img_size or spec.img_size
    train_tf = spec.transform(True, img_size, augment=cfg.augment, scale=cfg.crop_scale, hflip=cfg.hflip,
                              auto_augment=cfg.auto_augment, color_jitter=cfg.color_jitter,
                              re_prob=cfg.re_prob or None)  # fmt: skip
    augmenting = cfg.augment if cfg.augment is not None else spec.augment.get("augment", True)
    check_labels(cfg, spec.train)
    train_set = EpochSeededDataset(spec.train, train_tf, seed=cfg.seed, random=augmenting)
    test_set = EpochSeededDataset(spec.test, spec.transform(False, img_size), random=False)
    images_per_step = cfg.batch_size
    if cfg.soft_labels:  # replay a bank: its stored crops replace the augmentation
        if cfg.mixup or cfg.cutmix:
            raise ValueError("mixup/cutmix cannot be combined with --soft-labels: the stored labels are per crop")
        if cfg.batch_size % cfg.crops_per_image:
            raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of crops_per_image {cfg.crops_per_image}")
        bank = SoftLabelBank(cfg.soft_labels)
        wanted = teacher_id(cfg.teacher, cfg.teacher_checkpoint, cfg.teacher_pretrained) if cfg.teacher else None
        bank.check(dataset=spec.name, num_images=len(spec.train), num_classes=spec.num_classes, img_size=img_size,
                   teacher=wanted)  # fmt: skip
        train_set = SoftLabelDataset(spec.train, bank, cfg.crops_per_image, seed=cfg.seed)
        images_per_step = cfg.batch_size // cfg.crops_per_image
    sampler = EpochBatchSampler(len(train_set), images_per_step, shuffle=True, drop_last=True, seed=cfg.seed,
                                rank=dist.rank, world_size=dist.world_size)  # fmt: skip
    test_sampler = EpochBatchSampler(len(test_set), cfg.batch_size, shuffle=False, drop_last=False,
                                     rank=dist.rank, world_size=dist.world_size)  # fmt: skip
    pin = dist.device.type == "cuda"
    return Data(img_size=img_size, num_classes=spec.num_classes, sampler=sampler, replay=bool(cfg.soft_labels),
                train_loader=make_loader(train_set, sampler, cfg.num_workers, pin),
                test_loader=make_loader(test_set, test_sampler, cfg.num_workers, pin))  # fmt: skip


def check_labels(cfg: TrainConfig, dataset) -> None:
    """Refuse what needs one class per image (mixup, cutmix, soft labels, a teacher) on per-token or per-step labels."""
    needing = [name for name in ("mixup", "cutmix", "soft_labels", "teacher") if getattr(cfg, name)]
    if not needing or not len(dataset):
        return
    shape = tuple(torch.as_tensor(dataset[0][1]).shape)  # () for a class per image
    if shape:
        raise ValueError(
            f"{', '.join(needing)} need one class per image, but the labels of {cfg.dataset!r} are {shape} per image "
            f"(per token or per step): set {' and '.join(needing)} off, or train on a dataset with a class per image"
        )


def build_model(cfg: TrainConfig, num_classes: int, img_size: int, device: torch.device,
                model: torch.nn.Module | None = None) -> torch.nn.Module:  # fmt: skip
    if model is None:
        kwargs = dict(num_classes=num_classes, img_size=img_size) if cfg.model in list_models() else {}
        kwargs.setdefault("num_classes", num_classes)
        if cfg.drop_path is not None:
            kwargs["drop_path_rate"] = cfg.drop_path
        kwargs.update(cfg.model_kwargs)  # the caller's options win
        model = create_model(cfg.model, **kwargs)
    model = model.to(device)
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.application_loss and not hasattr(model, "forward_applications"):
        raise ValueError(
            f"application_loss={cfg.application_loss} needs the output after every application, "
            f"model.forward_applications (sret_mini.SReT has it); {type(model).__name__} has none: "
            "set application_loss=0, or train an SReT"
        )
    return model


def build_optimisation(cfg: TrainConfig, model: torch.nn.Module, num_classes: int, steps_per_epoch: int,
                       amp: str) -> Optimisation:  # fmt: skip
    """The optimiser, its schedule (per step), the loss scaler (fp16), EMA, mixup and the loss."""
    optimizer = create_optimizer_v2(model, opt=cfg.opt, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=cfg.sched, num_epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs,
        warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr, step_on_epochs=False, updates_per_epoch=steps_per_epoch,
    )  # fmt: skip
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing,
                      num_classes=num_classes)  # fmt: skip
    criterion = SoftTargetCrossEntropy() if mixup else torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    device_type = next(model.parameters()).device.type
    return Optimisation(optimizer=optimizer, scheduler=scheduler, mixup=mixup, criterion=criterion,
                        scaler=torch.amp.GradScaler(device_type) if amp == "fp16" else None,
                        ema=ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema else None)  # fmt: skip


def build_teacher_of(cfg: TrainConfig, num_classes: int, img_size: int,
                     device: torch.device) -> tuple[torch.nn.Module | None, KDLoss | None]:  # fmt: skip
    """An online teacher (not with a soft-label bank, which replaces it) and the distillation loss."""
    teacher = None
    if cfg.teacher and not cfg.soft_labels:
        kwargs = dict(img_size=img_size) if cfg.teacher in list_models() else {}
        kwargs.update(cfg.teacher_kwargs)
        teacher = build_teacher(cfg.teacher, num_classes, cfg.teacher_checkpoint, cfg.teacher_pretrained, **kwargs)
        teacher = teacher.to(device)
    distill = KDLoss(cfg.kd_temperature, cfg.kd_hard_weight) if teacher is not None or cfg.soft_labels else None
    return teacher, distill


def resume(run: Run) -> None:
    """Continue the run saved in `out/last.pt`: weights, optimiser, schedule, generators, the epoch so far."""
    state = load_file(run.out / "last.pt")
    check_resumable(state["config"], run.cfg)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None:
        run.ema.module.load_state_dict(state["ema"])
    run.epoch, run.start_step, run.num_updates = state["epoch"], state["step"], state["num_updates"]
    run.best, run.history = state["best_top1"], list(state["history"])
    saved = state["partial"]
    run.partial = dict(saved, loss=torch.tensor(saved["loss"], dtype=torch.float64, device=run.device),
                       correct=torch.tensor(saved["correct"], dtype=torch.float64, device=run.device))  # fmt: skip
    rank = run.dist.rank
    set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
    if run.dist.is_main and (fixed := repair(run.out, state)):  # a kill between the writes of an epoch's end
        print(f"resume: {', '.join(fixed)} rewritten from {run.out}/last.pt", file=sys.stderr)


def save_last(run: Run, epoch: int, step: int) -> None:
    """Save everything a resumed run needs to last.pt (on the main process; RNG states from every rank)."""
    states = [rng_state()]
    if run.dist.enabled:
        states = [None] * run.dist.world_size
        torch.distributed.all_gather_object(states, rng_state())
    if not (run.dist.is_main and run.out):
        return
    partial = dict(run.partial, loss=run.partial["loss"].item(), correct=run.partial["correct"].item())
    save_atomic(
        dict(model=run.model.state_dict(), optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(),
             scaler=run.scaler.state_dict() if run.scaler else None,
             ema=run.ema.module.state_dict() if run.ema else None, epoch=epoch, step=step,
             num_updates=run.num_updates, best_top1=run.best, history=run.history, partial=partial, rng=states,
             config=asdict(run.cfg)),
        run.out / "last.pt",
    )  # fmt: skip


def loop(run: Run, epoch_hook: Callable | None = None, step_hook: Callable | None = None) -> TrainResult:
    """Epoch after epoch: the steps of one epoch, then the epoch's end; Ctrl-C stops after a step."""
    stopped = None
    with StopRequest() as stop:
        for epoch in range(run.epoch, run.cfg.epochs):
            if epoch_hook is not None:
                epoch_hook(epoch, run.model)
            tic = time.perf_counter()
            stopped = train_epoch(run, epoch, stop, step_hook)
            run.partial["seconds"] += time.perf_counter() - tic
            if stopped:
                save_last(run, epoch, run.start_step)
                break
            end_epoch(run, epoch)
    run.model.eval()
    # a stop says where the run can go on; a planned stop (stop_after_steps) without a run folder has nothing to say
    if run.dist.is_main and stopped and (run.out or stopped == "ctrl-c"):
        where = (
            f"saved {run.out}/last.pt; continue with resume=True (--resume)" if run.out else "no --out: nothing saved"
        )
        print(f"stopped ({stopped}) after {run.num_updates} optimizer steps: {where}", file=sys.stderr)
    return TrainResult(run.history, run.model, run.ema.module if run.ema else None, stopped, run.out)


def train_epoch(run: Run, epoch: int, stop: StopRequest, step_hook: Callable | None = None) -> str | None:
    """The steps of one epoch (from `run.start_step` on a resume); why it stopped early, or None."""
    cfg, main = run.cfg, run.dist.is_main
    run.sampler.set_epoch(epoch, run.start_step)
    run.model.train()
    bar = tqdm(run.train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (main and cfg.progress),
               leave=False, dynamic_ncols=True)  # fmt: skip
    tic = time.perf_counter()
    for step, batch in enumerate(bar, start=run.start_step):
        images, labels, soft = unpack(batch, run.replay, run.device, cfg.channels_last)
        loss, logits = forward(run, images, labels, soft)
        # one read-back per step: every process must agree to stop (NaN, Ctrl-C) before anything is applied
        flags = distributed.all_sum(torch.tensor([float(not torch.isfinite(loss)), float(stop.requested)]))
        if flags[0] > 0:
            raise non_finite(run, loss, epoch, step)
        update(run, loss)
        run.partial["loss"] += loss.detach().double() * len(labels)
        right = logits.argmax(-1) == final_labels(logits, labels)  # (B,), or per token (B, N)
        run.partial["correct"] += reduce(right.double(), "b ... -> b", "mean").sum()  # a token counts 1 / N
        run.partial["seen"] += len(labels)
        run.start_step = step + 1
        if step_hook is not None:
            step_hook(run, loss.detach())
        if main and cfg.progress and step % LOG_EVERY == 0:
            seen, seconds = run.partial["seen"], run.partial["seconds"] + time.perf_counter() - tic
            bar.set_postfix(loss=f"{run.partial['loss'].item() / seen:.3f}",
                            acc=f"{100 * run.partial['correct'].item() / seen:.1f}",
                            img_s=f"{seen * run.dist.world_size / seconds:.0f}")  # fmt: skip
        if flags[1] > 0:
            return "ctrl-c"
        if cfg.stop_after_steps is not None and run.num_updates >= cfg.stop_after_steps:
            return "stop_after_steps"
    return None


def unpack(batch, replay: bool, device: torch.device, channels_last: bool):
    """(images, labels, soft labels or None) on the device; replayed crops (B, m, ...) -> (B * m, ...)."""
    images, labels, soft = batch if replay else (*batch, None)
    if replay:
        images, labels, soft = images.flatten(0, 1), labels.flatten(0, 1), soft.flatten(0, 1).to(device)
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels, soft


def forward(run: Run, images: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None):
    """(loss, final logits) of a batch: soft labels replayed, an online teacher's, or the labels (mixed)."""
    targets = labels
    if run.mixup is not None:
        images, targets = run.mixup(images, labels)
    with autocast(run.device, run.amp):
        outputs = run.net(images)  # logits (B, C) or (B, N, C); with application_loss every application's
        logits = outputs[-1] if run.cfg.application_loss else outputs
        if soft is not None:
            return run.distill(logits.float(), teacher_probs=soft, labels=labels), logits
        if run.teacher is not None:
            with torch.no_grad():
                teacher_logits = run.teacher(images)
            return run.distill(logits.float(), teacher_logits.float(), labels=targets), logits
        return supervised_loss(run.criterion, outputs, targets, run.cfg.application_loss), logits


def supervised_loss(criterion: torch.nn.Module, outputs: torch.Tensor, labels: torch.Tensor,
                    application_loss: float = 0.0) -> torch.Tensor:  # fmt: skip
    """The criterion's mean over predictions (images or tokens); with w = application_loss > 0, at every application.

    outputs: logits (B, C) or per token (B, N, C); with w > 0 the output after every application,
        (A, B, C) or (A, B, N, C) (`model.forward_applications`), the last one the final output.
    labels: one per prediction, (B,) or (B, N) (or mixup's (B, C)), the target of every application;
        or one per step, (B, A) or (B, A, N): application a is trained on step a + 1, the final
        output on the last step (without w, the final output on the last step of any number of steps).

    loss = (1 - w) * L(final output, final labels) + w * mean over a of L(application a, its labels).
    """
    if not application_loss:
        return prediction_loss(criterion, outputs, final_labels(outputs, labels))
    final, applications = outputs[-1], len(outputs)
    steps = label_steps(final, labels)
    if steps not in (None, applications):
        raise ValueError(
            f"application_loss: the labels have {steps} steps per image and the model makes {applications} "
            f"applications of its last stage, one per step: give the dataset steps={applications} "
            f"(dataset_options), or the model loops={steps} (model_kwargs)"
        )
    targets = [labels] * applications if steps is None else labels.unbind(1)  # application a: step a + 1
    every = torch.stack([prediction_loss(criterion, out, target) for out, target in zip(outputs, targets)])
    return (1 - application_loss) * prediction_loss(criterion, final, targets[-1]) + application_loss * every.mean()


def prediction_loss(criterion: torch.nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`criterion` over every prediction: (B, C) logits against (B,) labels, or (B, N, C) against (B, N)."""
    if logits.ndim > 2:  # one prediction per token: (B, N, C) -> (B * N, C)
        logits, labels = logits.flatten(0, -2), labels.flatten()
    return criterion(logits, labels)


def update(run: Run, loss: torch.Tensor) -> None:
    """One optimizer step: backward (scaled for fp16), clipping, the step, the schedule, EMA."""
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
    else:
        loss.backward()
    if run.cfg.clip_grad:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip_grad)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.num_updates += 1
    run.scheduler.step_update(run.num_updates)
    if run.ema is not None:
        run.ema.update(run.model, step=run.num_updates)


def non_finite(run: Run, loss: torch.Tensor, epoch: int, step: int) -> NonFiniteLoss:
    saved = run.out is not None and (run.out / "last.pt").is_file()
    return NonFiniteLoss(
        f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} (learning rate "
        f"{run.optimizer.param_groups[0]['lr']:.2e}); nothing of this step was applied"
        f"{f' and the last good checkpoint is {run.out}/last.pt' if saved else ''}. Lower the learning rate "
        "(--lr), clip gradients (--clip-grad 1.0), or check the data for NaNs."
    )


def end_epoch(run: Run, epoch: int) -> None:
    """Evaluate, record, save: last.pt first (it holds the history), then best.pt and metrics.jsonl."""
    cfg, main = run.cfg, run.dist.is_main
    tic = time.perf_counter()
    stats = evaluate(run.eval_net, run.test_loader, run.device, run.amp, cfg.channels_last)
    loss, correct, seen = distributed.all_sum(
        torch.stack([run.partial["loss"], run.partial["correct"], run.partial["loss"].new_tensor(run.partial["seen"])])
    ).tolist()
    record = dict(
        epoch=epoch + 1, step=run.num_updates, train_loss=loss / seen, train_top1=100 * correct / seen,
        test_loss=stats["loss"], test_top1=stats["top1"], test_top5=stats["top5"],
        lr=run.optimizer.param_groups[0]["lr"], images_per_s=seen / run.partial["seconds"],
        seconds=run.partial["seconds"] + time.perf_counter() - tic,
    )  # fmt: skip
    if run.ema is not None:
        record["ema_test_top1"] = evaluate(run.ema.module, run.test_loader, run.device, run.amp, cfg.channels_last)[
            "top1"
        ]
    run.history.append(record)
    improved = record["test_top1"] > run.best
    run.best = max(run.best, record["test_top1"])
    run.start_step = 0
    run.new_epoch()
    save_last(run, epoch + 1, 0)  # a kill before the next two writes is repaired on resume (rundir.repair)
    if main and run.out:
        if improved:
            ema = run.ema.module.state_dict() if run.ema else None
            save_atomic(best_checkpoint(run.model.state_dict(), ema, epoch + 1, record["test_top1"], asdict(cfg)),
                        run.out / "best.pt")  # fmt: skip
        write_text(run.out / "metrics.jsonl", history_lines(run.history))
    if main and cfg.progress:
        tqdm.write(
            f"epoch {epoch + 1}/{cfg.epochs}  train loss {record['train_loss']:.3f}  "
            f"test loss {record['test_loss']:.3f}  test top-1 {record['test_top1']:.2f}%  "
            f"{record['images_per_s']:.0f} img/s  {record['seconds']:.1f} s"
        )
