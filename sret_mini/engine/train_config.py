"""What a training run depends on: `TrainConfig`, the named recipes, and what may change on resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .. import checks


@dataclass
class TrainConfig:
    """Everything a training run depends on. The defaults train `sret_nano` on the digits on a CPU.

    `None` means "the dataset's or model's own default" (input size, augmentation, drop path).

    `application_loss` w > 0 is deep supervision (a loss at every application of the last stage,
    Bansal et al., 2022): the loss is (1 - w) * L(final output) + w * mean over applications a of
    L(application a), through `model.forward_applications` (`sret_mini.SReT`). Labels with a steps
    dim, (steps, ...) per image as `arrows` gives, train application a against step a + 1 (steps must
    equal the applications); other labels train every application against the same labels.
    Whatever w, the reported accuracy (train_top1, test_top1) and test loss are the final output's
    (the last application), against the last step of labels with a steps dim.
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
    application_loss: float = 0.0  # w: weight of the mean loss over every application (0: the final output only)
    # augmentation (timm): None keeps the dataset's defaults
    augment: bool | None = None
    crop_scale: tuple[float, float] | None = None
    hflip: float | None = None
    auto_augment: str | None = None  # e.g. "rand-m9-mstd0.5-inc1" (RandAugment)
    color_jitter: float = 0.0  # brightness/contrast/saturation strength (timm drops it under RandAugment)
    re_prob: float = 0.0  # random erasing
    mixup: float = 0.0
    cutmix: float = 0.0
    # distillation (sret_mini.distill): an online teacher, or a soft-label bank (sret_mini.distill.softlabels)
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
    out: str | None = None  # receives config.json, metrics.jsonl, last.pt, best.pt (sret_mini.engine.run_folder)
    resume: bool = False  # continue the run saved in `out`
    overwrite: bool = False  # replace a run already saved in `out` (else a new run there is refused)
    stop_after_steps: int | None = None  # stop (resumably) after this many optimizer steps in total
    progress: bool = True

    def __post_init__(self):
        # every number in range and of the right kind, before torch or timm sees it
        for name, low in (("epochs", 1), ("batch_size", 1), ("crops_per_image", 1), ("num_workers", 0), ("seed", 0)):
            setattr(self, name, checks.integer(name, getattr(self, name), low))
        for name in ("img_size", "stop_after_steps"):
            if getattr(self, name) is not None:
                setattr(self, name, checks.integer(name, getattr(self, name), 1))
        for name in ("model_kwargs", "dataset_options", "teacher_kwargs"):
            checks.mapping(name, getattr(self, name))
        for name, low, high in (("lr_base", 0, None), ("weight_decay", 0, None), ("warmup_epochs", 0, None),
                                ("warmup_lr", 0, None), ("min_lr", 0, None), ("label_smoothing", 0, 1),
                                ("ema_decay", 0, 1), ("color_jitter", 0, None), ("re_prob", 0, 1), ("mixup", 0, None),
                                ("cutmix", 0, None), ("kd_temperature", 0, None), ("kd_hard_weight", 0, None)):  # fmt: skip
            checks.number(name, getattr(self, name), low, high)
        for name, low, high in (("lr", 0, None), ("clip_grad", 0, None), ("drop_path", 0, 1), ("hflip", 0, 1)):
            if getattr(self, name) is not None:
                checks.number(name, getattr(self, name), low, high)
        if self.lr == 0 or self.lr_base == 0 or self.kd_temperature == 0:
            raise ValueError("lr, lr_base and kd_temperature must be > 0")
        if self.crop_scale is not None:
            low, high = (checks.number("crop_scale", v, 0, 1) for v in self.crop_scale)
            if not 0 < low <= high:
                raise ValueError(f"crop_scale={self.crop_scale} must be (low, high) with 0 < low <= high <= 1")
        checks.choice("amp", self.amp, ("auto", "bf16", "fp16", "none"))
        self.application_loss = checks.number("application_loss", self.application_loss, 0, 1)
        if self.application_loss and (self.teacher or self.soft_labels):
            raise ValueError(
                f"application_loss={self.application_loss} scores the labels at every application; distillation "
                "(teacher, soft_labels) scores the final output only: set application_loss=0, or drop the teacher "
                "and soft_labels"
            )
        if self.resume and self.overwrite:
            raise ValueError("resume=True continues the run in `out` and overwrite=True replaces it: give one")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else self.lr_base * self.batch_size / 512


# Named recipes: overrides of the defaults. "imagenet" is the paper's (DeiT-style training with the
# authors' larger learning rate, 0.001 x batch / 512, and 30 warm-up epochs, from their README).
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

#: fields that say where and how a run is kept or stopped, not what it computes: they may change
#: between a run and its resumption, and `sret_mini.book.load_or_train` leaves them out of a run's name
RUN_NEUTRAL = {
    "resume", "overwrite", "progress", "num_workers", "stop_after_steps", "out", "data_dir", "download", "device",
}  # fmt: skip


def check_resumable(saved: dict, cfg: TrainConfig) -> None:
    """Refuse to resume the run saved with config `saved` under other settings than `cfg`'s.

    A field the saved config lacks is newer than the run, which was made with its default.
    """
    now, defaults = asdict(cfg), asdict(TrainConfig())
    saved = {k: saved.get(k, defaults[k]) for k in now}
    differ = {k: (saved[k], now[k]) for k in now if k not in RUN_NEUTRAL and _norm(saved[k]) != _norm(now[k])}
    if differ:
        raise ValueError(
            f"cannot resume: the run in {cfg.out} was made with other settings {differ} (saved, now). "
            "Resume with the same settings, or start a new run with another --out."
        )


def _norm(v):
    return list(v) if isinstance(v, tuple) else v
