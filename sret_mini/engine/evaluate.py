"""Evaluation: top-1 / top-5 accuracy, loss and throughput, on one process or summed over many::

    sret-mini eval --checkpoint runs/digits/best.pt                # a sret_mini run: settings from it
    sret-mini eval --checkpoint SReT_T.pth --model sret_t \\
        --dataset imagefolder --data-dir /data/imagenet          # an official file

A sret_mini checkpoint records its model, dataset and options, so the first form needs nothing
else; any other file needs the model and the data named.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .distributed import all_sum
from .precision import autocast


@torch.no_grad()
def evaluate(model, loader, device: torch.device, amp: str = "none", channels_last: bool = False,
             progress: bool = False, desc: str = "eval") -> dict:  # fmt: skip
    """Mean cross-entropy, top-1 and top-5 accuracy (percent) and images/second over `loader`.

    Under torch.distributed every process evaluates its share and the sums are combined, so each
    image counts exactly once.
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64)  # loss sum, top-1 hits, top-5 hits, images
    start = time.perf_counter()
    for images, labels in tqdm(loader, desc=desc, leave=False, disable=not progress):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        top = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        hits = top == labels[:, None]
        totals += torch.tensor(
            [F.cross_entropy(logits, labels, reduction="sum").item(), hits[:, 0].sum().item(),
             hits.any(dim=-1).sum().item(), len(labels)], dtype=torch.float64,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    totals = all_sum(totals)
    model.train(was_training)
    n = max(totals[3].item(), 1)
    return dict(loss=totals[0].item() / n, top1=100 * totals[1].item() / n, top5=100 * totals[2].item() / n,
                images=int(totals[3].item()), images_per_s=totals[3].item() / max(seconds, 1e-9))  # fmt: skip
