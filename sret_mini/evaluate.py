"""Evaluation: top-1 / top-5 accuracy, loss and throughput, on one process or summed over many::

    sret-mini eval --checkpoint runs/digits/best.pt                # a sret_mini run: settings from it
    sret-mini eval --checkpoint SReT_T.pth --model sret_t \\
        --dataset imagefolder --data-dir /data/imagenet          # an official file

A sret_mini checkpoint records its model, dataset and options, so the first form needs nothing
else; any other file needs the model and the data named.
"""

from __future__ import annotations

import argparse
import json
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


def main(argv: list[str] | None = None) -> dict:
    """`sret-mini eval`: evaluate a checkpoint (ours or the authors') and print the figures."""
    from .checkpoint import extract_state_dict, load_file
    from .data import EpochBatchSampler, EpochSeededDataset, load_dataset, make_loader
    from .distributed import pick_device
    from .registry import create_model

    parser = argparse.ArgumentParser(prog="sret-mini eval", description=main.__doc__)
    parser.add_argument("--checkpoint", required=True, help="a sret_mini run's last.pt/best.pt, or an official .pth")
    parser.add_argument("--model", help="model name (default: the run's own)")
    parser.add_argument("--dataset", help="dataset name (default: the run's own)")
    parser.add_argument("--data-dir", help="dataset folder (default: the run's own, or data/)")
    parser.add_argument("--img-size", type=int, help="input size (default: the run's own)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--ema", action="store_true", help="evaluate the EMA weights of a sret_mini run")
    args = parser.parse_args(argv)

    checkpoint = load_file(args.checkpoint)
    run = checkpoint.get("config", {}) if isinstance(checkpoint, dict) else {}
    model_name = args.model or run.get("model")
    dataset = args.dataset or run.get("dataset")
    if not model_name or not dataset:
        parser.error("this checkpoint does not record its model and dataset: give --model and --dataset")
    spec = load_dataset(dataset, root=args.data_dir or run.get("data_dir"), img_size=args.img_size or run.get("img_size"),
                        download=False, **run.get("dataset_options", {}) if not args.dataset else {})  # fmt: skip
    kwargs = dict(run.get("model_kwargs", {})) if not args.model else {}
    model = create_model(model_name, num_classes=spec.num_classes, img_size=spec.img_size, **kwargs)
    model.load_state_dict(extract_state_dict(checkpoint, use_ema=args.ema))
    device = pick_device(args.device)
    model.to(device)
    test = EpochSeededDataset(spec.test, spec.transform(train=False), random=False)
    sampler = EpochBatchSampler(len(test), args.batch_size, shuffle=False, drop_last=False)
    result = evaluate(model, make_loader(test, sampler, args.num_workers), device, args.amp, progress=True)
    print(json.dumps({"checkpoint": str(args.checkpoint), "model": model_name, "dataset": spec.name,
                      **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}}))  # fmt: skip
    return result
