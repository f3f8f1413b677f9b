"""What the training chapters (CIFAR, ImageNet) share: recipe tables, scaled recipes, image folders, torchrun.

None of this is an idea of its own; it is the bookkeeping around the chapters' ideas, written once:

* :func:`recipe_table`: a recipe of :data:`sret_mini.engine.train_config.RECIPES`, field by field, beside the
  defaults of :class:`~sret_mini.engine.train_config.TrainConfig` and what each field does;
* :func:`scale_to_run`: a recipe made for hundreds of thousands of steps, fitted to a short run
  (warm-up and EMA horizon kept as the same share of the run);
* :class:`ExtraEmas`: a `step_hook` that keeps more exponential moving averages of the weights;
* :func:`write_image_folder`: a dataset of PIL images written as ``train/<class>/*.png``, ``val/...``;
* :func:`torchrun_command` and :data:`TORCHRUN_FLAGS`: the launch command of a distributed run;
* :func:`speed_rows`: the rows of a shipped training-speed result, for a table.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, replace
from pathlib import Path

from ..engine.train_config import RECIPES, TrainConfig
from .display import Markdown, markdown_table

#: what each field of a recipe does (the chapters' recipe tables)
MEANING = {
    "model": "the network (a registry name)",
    "dataset": "what it trains on",
    "epochs": "passes over the training set",
    "batch_size": "images per optimizer step, over all processes",
    "lr_base": "learning rate per 512 images of batch (lr = lr_base × batch / 512)",
    "warmup_epochs": "epochs of linear warm-up before the cosine",
    "warmup_lr": "learning rate where the warm-up starts",
    "min_lr": "learning rate where the cosine ends",
    "weight_decay": "AdamW's decoupled weight decay (not on biases, norms, LRC scalars)",
    "label_smoothing": "target 1 - ε + ε/K on the label, ε/K elsewhere",
    "drop_path": "stochastic depth: largest rate, at the last block application",
    "auto_augment": "RandAugment: 2 ops per image, magnitude 9 ± 0.5",
    "re_prob": "probability of random erasing",
    "mixup": "mixup α (blend two images and their labels)",
    "cutmix": "CutMix α (paste a box of another image)",
    "crop_scale": "RandomResizedCrop's range of areas",
    "hflip": "probability of a horizontal flip",
    "ema": "keep an exponential moving average of the weights",
    "ema_decay": "its decay d: it spans about 1 / (1 - d) steps",
    "num_workers": "data-loading processes",
}


def recipe_table(name: str) -> Markdown:
    """The fields recipe `name` sets: its value, `TrainConfig`'s default, what the field does."""
    defaults = asdict(TrainConfig())
    rows = [(f"`{k}`", v, defaults[k], MEANING.get(k, "")) for k, v in RECIPES[name].items()]
    return markdown_table(rows, ["field", f"`{name}` recipe", "default", "what it does"])


def ema_horizon(decay: float) -> float:
    """How many steps an exponential moving average of decay `decay` spans: 1 / (1 - decay)."""
    return 1.0 / (1.0 - decay)


def scale_to_run(cfg: TrainConfig, steps: int, epochs: int, full_steps: int) -> TrainConfig:
    """`cfg` (a recipe made for `full_steps` optimizer steps in `cfg.epochs` epochs) fitted to a
    run of `epochs` epochs and `steps` steps in all.

    What counts steps keeps its share of the run: the warm-up (the same fraction of the epochs)
    and the EMA (its horizon the same fraction of the steps). Everything else is kept.
    """
    share = ema_horizon(cfg.ema_decay) / full_steps
    return replace(cfg, epochs=epochs, warmup_epochs=epochs * cfg.warmup_epochs / cfg.epochs,
                   ema_decay=1.0 - 1.0 / max(share * steps, 1.0))  # fmt: skip


class ExtraEmas:
    """A `step_hook` for :func:`sret_mini.engine.loop.train` that keeps moving averages at other decays.

    Each average is updated after every optimizer step, as `train` updates its own (timm's
    `ModelEmaV3`, which copies the weights at the first step). After the run, :meth:`top1` scores
    every average on the run's test images.
    """

    def __init__(self, decays):
        self.decays, self.emas, self.run = tuple(decays), {}, None

    def __call__(self, run, loss) -> None:
        from timm.utils import ModelEmaV3

        if self.run is not run:
            self.run, self.emas = run, {d: ModelEmaV3(run.model, decay=d) for d in self.decays}
        for ema in self.emas.values():
            ema.update(run.model, step=run.num_updates)

    def top1(self) -> dict[float, float]:
        """Test top-1 (%) of every average, by decay."""
        from ..engine.evaluate import evaluate

        if self.run is None:
            raise RuntimeError("no step was taken: pass this object as train(..., step_hook=...) first")
        run = self.run
        return {d: evaluate(e.module, run.test_loader, run.device, run.amp)["top1"] for d, e in self.emas.items()}


def write_image_folder(splits: dict, root: str | Path, classes) -> Path:
    """Write `splits` (split name -> dataset of (PIL image, label)) as ``root/<split>/<class>/<i>.png``.

    This is the layout of ImageNet, Imagenette and `load_dataset("imagefolder", root=root)`.
    Returns `root`.
    """
    root = Path(root)
    for split, data in splits.items():
        for c in classes:
            (root / split / str(c)).mkdir(parents=True, exist_ok=True)
        for i in range(len(data)):
            image, label = data[i]
            image.save(root / split / str(classes[label]) / f"{i:05d}.png")
    return root


#: what each flag of the launch command does
TORCHRUN_FLAGS = {
    "--nnodes": "how many machines (nodes) take part",
    "--nproc_per_node": "processes started on each node: one per GPU",
    "--standalone": "one node: torchrun makes the meeting point itself, on a free local port",
    "--rdzv_backend": "how the processes find each other: c10d, a small store on the endpoint",
    "--rdzv_endpoint": "host:port of that store, on the first node; every node gives the same",
    "--rdzv_id": "the job's name, so two jobs on one endpoint do not meet",
    "-m sret_mini train": "the program each process runs (`sret-mini train`); it reads RANK, LOCAL_RANK, WORLD_SIZE",
}


def torchrun_command(nodes: int, gpus_per_node: int, *train_args: str, job: str = "sret") -> str:
    """The command line that runs `python -m sret_mini train *train_args` on nodes × gpus_per_node processes.

    Example:
        >>> torchrun_command(1, 8, "--recipe", "imagenet")
        'torchrun --nnodes=1 --nproc_per_node=8 --standalone -m sret_mini train --recipe imagenet'
    """
    launch = ["torchrun", f"--nnodes={nodes}", f"--nproc_per_node={gpus_per_node}"]
    if nodes == 1:
        launch.append("--standalone")
    else:  # the same command on every node; they meet at the first node's address
        launch += ["--rdzv_backend=c10d", "--rdzv_endpoint=$MASTER_ADDR:29400", f"--rdzv_id={job}"]
    return " ".join([*launch, "-m", "sret_mini", "train", *map(shlex.quote, train_args)])


def speed_rows(result: dict | None, model: str) -> list[tuple]:
    """(precision, compiled, batch, images/s) of `model` in a shipped training-speed result (none if None)."""
    if result is None:
        return []
    rows = [r for r in result["results"] if r.get("model") == model and r.get("mode", "train") == "train"]
    return [(r["precision"], r.get("compiled", False), r["batch"], f"{r['images_per_s']:,.0f}") for r in rows]
