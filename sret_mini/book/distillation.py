"""Helpers of the distillation chapter: making a bank for a dataset, what a run cost, a bank's crops drawn.

The idea itself (the loss, the bank, the replay) lives in :mod:`sret_mini.distill` and
:mod:`sret_mini.distill.softlabels`; what is here only sets them up and measures them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ..distill.softlabels import make_bank

#: bytes of one stored crop without its labels: the box (4 x int16) and the flip flag (uint8)
BOX_BYTES = 4 * 2 + 1
#: bytes of one stored probability: its class (int16) and its value (float16)
LABEL_BYTES = 2 + 2


def crop_bytes(topk: int) -> int:
    """Bytes of one stored crop with its top-k probabilities, in the format of `sret_mini.distill.softlabels`.

    Example:
        >>> crop_bytes(5)  # FKD's top-5: 9 bytes of box and flip, 5 x (class, probability)
        29
    """
    return BOX_BYTES + topk * LABEL_BYTES


def make_bank_for(teacher: torch.nn.Module, spec, path: str | Path, *, teacher_name: str, crops: int, topk: int,
                  device: str | torch.device = "cpu") -> Path:  # fmt: skip
    """A soft-label bank of `spec.train` (a :class:`sret_mini.data.DataSpec`) at `path`.

    Its crops are drawn from the distribution the dataset's training augmentation draws from (the
    dataset's crop scale, aspect ratio and flip probability), so a replayed crop is one the student
    could have seen online.
    """
    augment = spec.augment
    return make_bank(
        teacher, spec.train, path, dataset_name=spec.name, teacher_name=teacher_name, num_classes=spec.num_classes,
        img_size=spec.img_size, mean=spec.mean, std=spec.std, crops=crops, topk=topk,
        scale=augment.get("scale", (0.08, 1.0)), ratio=augment.get("ratio", (3 / 4, 4 / 3)),
        hflip=augment.get("hflip", 0.5), device=device, progress=False,
    )  # fmt: skip


def seconds_per_epoch(histories: Iterable[list[dict]], images_per_epoch: int) -> float:
    """Median training time of one epoch (evaluation excluded) over every epoch of the given runs.

    `histories`: the `history` of each run (`sret_mini.TrainResult.history`); each epoch
    records its training throughput, from which the time of `images_per_epoch` images follows.
    """
    times = [images_per_epoch / epoch["images_per_s"] for history in histories for epoch in history]
    if not times:
        raise ValueError("no epochs to time")
    return statistics.median(times)


def plot_replay(image, views: torch.Tensor, boxes: torch.Tensor, labels: dict[str, torch.Tensor], classes, mean, std):
    """One training image with its stored crop boxes; each crop rebuilt, with its soft labels below it.

    `views` (K, 3, H, W): normalised crops; `boxes` (K, 4): top, left, height, width in pixels;
    `labels`: name -> (K, C) soft labels (e.g. the whole distribution and a top-k bank's). Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    k = len(views)
    mean, std = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    fig, axes = plt.subplots(2, k + 1, figsize=(2.0 * (k + 1), 4.2), squeeze=False)
    axes[0, 0].imshow(np.asarray(image))
    axes[0, 0].set_title("training image", fontsize=9)
    for ax in axes[:, 0]:
        ax.axis("off")
    markers = ["o", "x", "+", "s"]
    for c in range(k):
        top, left, height, width = boxes[c].tolist()
        axes[0, 0].add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, color=f"C{c}", lw=1.5))
        axes[0, c + 1].imshow((views[c] * std + mean).clamp(0, 1).permute(1, 2, 0))
        axes[0, c + 1].set_title(f"crop {c + 1}", fontsize=9, color=f"C{c}")
        axes[0, c + 1].axis("off")
        ax = axes[1, c + 1]
        for (name, soft), marker in zip(labels.items(), markers):
            ax.plot(range(len(classes)), soft[c], marker, linestyle="none", markersize=5, label=name)
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1.5)
        ax.set_xticks(range(len(classes)), classes, fontsize=7)
    axes[1, 1].legend(fontsize=7, loc="lower left")
    axes[1, 1].set_ylabel("soft label (log scale)")
    fig.tight_layout()
    return fig
