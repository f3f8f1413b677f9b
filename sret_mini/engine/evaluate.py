"""Evaluation: top-1 / top-5 accuracy, loss and throughput, on one process or summed over many::

    sret-mini eval --checkpoint runs/digits/best.pt                # a sret_mini run: settings from it
    sret-mini eval --checkpoint SReT_T.pth --model sret_t \\
        --dataset imagefolder --data-dir /data/imagenet          # an official file

A sret_mini checkpoint records its model, dataset and options, so the first form needs nothing
else; any other file needs the model and the data named.

Labels come in three shapes, told apart by the logits' shape: one class per image, (B,) for
logits (B, C); one per token, (B, N) for per-token logits (B, N, C) (a model with
global_pool=""), scored over tokens; or one per step and prediction, (B, steps) / (B, steps, N)
(e.g. the `arrows` dataset, a target for every application), scored on the last step.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .distributed import all_sum
from .precision import autocast


def label_steps(logits: torch.Tensor, labels: torch.Tensor) -> int | None:
    """How `labels` fit `logits` (B, C) or (B, N, C): None for one label per prediction, else the steps.

    One label per prediction: (B,) or (B, N), or a class distribution per prediction shaped like
    the logits (mixup's soft targets). One per step and prediction: (B, steps) or (B, steps, N).
    Anything else is refused, with the shapes that would fit.
    """
    per_prediction = logits.shape[:-1]  # (B,) or (B, N)
    if labels.shape == per_prediction or (labels.is_floating_point() and labels.shape == logits.shape):
        return None
    if labels.ndim == len(per_prediction) + 1 and labels.shape[:1] + labels.shape[2:] == per_prediction:
        return labels.shape[1]
    raise ValueError(
        f"labels of shape {tuple(labels.shape)} do not fit logits of shape {tuple(logits.shape)}: give one "
        f"label per prediction, {tuple(per_prediction)}, or one per step and prediction, (B, steps, ...). "
        "Per-token labels (B, N) need per-token logits (B, N, C): model_kwargs global_pool='' and a grid of N "
        "tokens (e.g. stem_stride=4 at 32 px for the 64 cells of `arrows`)."
    )


def final_labels(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The labels the model's output is scored against: `labels`, or their last step (see `label_steps`)."""
    return labels if label_steps(logits, labels) is None else labels[:, -1]


@torch.no_grad()
def evaluate(model, loader, device: torch.device, amp: str = "none", channels_last: bool = False,
             progress: bool = False, desc: str = "eval") -> dict:  # fmt: skip
    """Mean cross-entropy, top-1 and top-5 accuracy (percent) and images/second over `loader`.

    Loss and accuracy are over predictions: images, or tokens with per-token labels (B, N); labels
    with a steps dim, (B, steps, ...), are scored on their last step (see the module docstring).
    Under torch.distributed every process evaluates its share and the sums are combined, so each
    image counts exactly once.
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(5, dtype=torch.float64)  # loss sum, top-1 hits, top-5 hits, predictions, images
    start = time.perf_counter()
    for images, labels in tqdm(loader, desc=desc, leave=False, disable=not progress):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()  # (B, C), or (B, N, C) per token
        labels = final_labels(logits, labels)  # (B,) or (B, N)
        top = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        hits = top == labels[..., None]
        loss = F.cross_entropy(logits.flatten(0, -2), labels.flatten(), reduction="sum")  # over predictions
        totals += torch.tensor(
            [loss.item(), hits[..., 0].sum().item(), hits.any(dim=-1).sum().item(), labels.numel(), len(labels)],
            dtype=torch.float64,
        )
    seconds = time.perf_counter() - start
    totals = all_sum(totals)
    model.train(was_training)
    n = max(totals[3].item(), 1)
    return dict(loss=totals[0].item() / n, top1=100 * totals[1].item() / n, top5=100 * totals[2].item() / n,
                images=int(totals[4].item()), images_per_s=totals[4].item() / max(seconds, 1e-9))  # fmt: skip
