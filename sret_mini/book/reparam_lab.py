"""Chapter 10's experiment: three networks that deploy the same compute, trained on the same seeds.

At inference each of them runs `depth` plain blocks of one width, so their deployed MACs are
equal; they differ in what they store and in what they train:

* ``plain``: `depth` ordinary blocks;
* ``recursive``: `depth // factor` blocks, each applied `factor` times (weights shared);
* ``reparameterized``: `depth` blocks of `factor` parallel branches each, joined during training
  by :class:`~sret_mini.reparam.JoiningSchedule` and merged away by :func:`~sret_mini.reparam.deploy`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..engine.loop import train
from ..engine.train_config import TrainConfig
from ..flops import count_macs, count_params
from ..reparam import JoiningSchedule, create_branched, deploy, finish_joining, recursive
from .display import Markdown, markdown_table
from .timing import Timing, cpu_threads, time_call

#: the arms of the experiment, in the order the tables show them
ARMS = ("plain", "recursive", "reparameterized")


def build(arm: str, *, depth: int, factor: int, **arch) -> nn.Module:
    """The training form of `arm` (one of :data:`ARMS`); its deployed form runs `depth` blocks."""
    if arm not in ARMS:
        raise ValueError(f"arm={arm!r}: choose one of {ARMS}")
    if depth % factor:
        raise ValueError(f"depth={depth} is not divisible by factor={factor}: recursion loops depth // factor blocks")
    if arm == "recursive":
        return recursive(create_branched(depth=depth // factor, branches=1, **arch), factor)
    return create_branched(depth=depth, branches=factor if arm == "reparameterized" else 1, **arch)


def prices(depth: int, factor: int, **arch) -> dict[str, dict[str, int]]:
    """Parameters and MACs per image of every arm, in its training form and deployed."""
    counts = {}
    for arm in ARMS:
        model = build(arm, depth=depth, factor=factor, **arch)
        finish_joining(model)  # counting only: declare the branches joined
        deployed, size = deploy(model), arch["img_size"]
        counts[arm] = dict(train_params=count_params(model), train_macs=count_macs(model, size),
                           params=count_params(deployed), macs=count_macs(deployed, size))  # fmt: skip
    return counts


def prices_table(counts: dict[str, dict[str, int]], macs_unit: str = "G") -> Markdown:
    """The table of :func:`prices`: parameters in millions, MACs in `macs_unit` (``"G"`` or ``"M"``)."""
    scale = {"G": 1e9, "M": 1e6}[macs_unit]
    rows = [(arm, f"{c['train_params'] / 1e6:.2f}M", f"{c['train_macs'] / scale:.2f}", f"{c['params'] / 1e6:.2f}M",
             f"{c['macs'] / scale:.2f}") for arm, c in counts.items()]  # fmt: skip
    units = f"{macs_unit}MACs per image"
    return markdown_table(rows, ["network", "params, training", f"{units}, training", "params, deployed",
                                 f"{units}, deployed"])  # fmt: skip


def test_set(spec, img_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole test split of a `DataSpec` as two tensors: images (N, C, H, W) and labels (N,)."""
    transform = spec.transform(False, img_size)
    images = torch.stack([transform(image) for image, _ in spec.test])
    return images, torch.tensor([label for _, label in spec.test])


@torch.inference_mode()
def logits(model: nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """The model's logits for `images`, in batches on the model's device, returned in float32 on the CPU."""
    device = next(model.parameters()).device
    return torch.cat([model(x.to(device)).float().cpu() for x in images.split(batch)])


@dataclass
class Trained:
    """One arm trained on one seed: both forms, the deployed test top-1, and the merge's error."""

    arm: str
    seed: int
    trained: nn.Module  # the training form (branches, or repeated blocks)
    deployed: nn.Module  # what runs at inference
    top1: float  # test top-1 (%) of the deployed form
    merge_gap: float  # largest |deployed - trained| test logit
    seconds: float


def train_arm(arm: str, seed: int, cfg: TrainConfig, test, *, depth: int, factor: int, **arch) -> Trained:
    """Train `arm` with `cfg` on `seed` (initial weights and data order), deploy it, test the deployed form.

    The reparameterized arm moves its joining schedule at the start of every epoch; the schedule
    reaches lam = 1 before the last epochs, so the network that is merged is the one trained last.
    """
    torch.manual_seed(seed)
    model = build(arm, depth=depth, factor=factor, **arch)
    schedule = JoiningSchedule(model) if arm == "reparameterized" else None
    hook = (lambda epoch, _: schedule.step(epoch / cfg.epochs)) if schedule else None
    start = time.perf_counter()
    result = train(replace(cfg, model=arm, seed=seed, progress=False), model=model, epoch_hook=hook)
    seconds = time.perf_counter() - start
    finish_joining(result.model)  # where the schedule ended anyway (a no-op for the other arms)
    deployed = deploy(result.model)
    images, labels = test
    out, before = logits(deployed, images), logits(result.model, images)
    top1 = 100 * (out.argmax(-1) == labels).float().mean().item()
    return Trained(arm, seed, result.model, deployed, top1, (out - before).abs().max().item(), seconds)


def latency(model: nn.Module, batch: int, img_size: int, threads: int = 1, min_run_time: float = 0.5) -> Timing:
    """Median time of one forward pass of `model` on the CPU (inference mode, `threads` threads)."""
    model = copy.deepcopy(model).cpu().eval()
    x = torch.randn(batch, model.in_chans, img_size, img_size)

    def forward():
        with torch.inference_mode():
            return model(x)

    with cpu_threads(threads):
        return time_call(forward, min_run_time=min_run_time)
