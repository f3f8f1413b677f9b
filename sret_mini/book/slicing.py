"""Helpers of the chapter on sliced group self-attention: groups of a token order, MACs by stage, the laboratory.

* :func:`group_of`: the group of every token when a token order is cut into contiguous slices;
* :func:`stage_macs`: a model's forward MACs per stage, and the part spent on attention maps;
* :func:`plot_token_groups`: the groups of a first and a recursive pass on a token grid;
* :func:`show_lab_images`, :func:`lab_config` and :func:`lab_accuracy`: the shapes laboratory
  (:mod:`sret_mini.data.shapes`): its images, one run, and the run's final test accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.shapes import lab_model_kwargs
from ..engine.train_config import TrainConfig
from ..flops import macs_by_module


def group_of(order: torch.Tensor, groups: int) -> torch.Tensor:
    """The group of every token when the sequence ``order`` (token indices) is cut into ``groups`` slices.

    Element ``i`` of the result is the group of token ``i``: with ``order = arange(n)`` (raster
    order) the groups are contiguous bands; with a permutation they are scattered.

    Example:
        >>> group_of(torch.tensor([2, 0, 3, 1]), 2)  # tokens 2, 0 in group 0; tokens 3, 1 in group 1
        tensor([0, 1, 0, 1])
    """
    n = len(order)
    if groups < 1 or n % groups:
        raise ValueError(f"{n} tokens cannot be cut into {groups} equal groups")
    position = torch.argsort(order)  # position[i]: where token i sits in `order`
    return position // (n // groups)


def stage_macs(model: torch.nn.Module) -> list[dict[str, int]]:
    """Forward MACs of one image in every stage of an SReT model, and the part in attention maps.

    Each entry has ``macs`` (the whole stage: projections, MLPs, NLLs, attention, pooling) and
    ``attention_maps`` (the query-key and weight-value products, the only part that slicing
    changes; counted as the stage's batched matrix products, ``aten.bmm``).
    """
    counts = macs_by_module(model)
    stages = []
    for s in range(len(model.stages)):
        ops = counts[f"stages.{s}"]
        stages.append(dict(macs=sum(ops.values()), attention_maps=ops.get("aten.bmm", 0)))
    return stages


def plot_token_groups(first: torch.Tensor, second: torch.Tensor, token: tuple[int, int], title: str = ""):
    """Three panels: the groups of the first pass, of the recursive pass, and what `token` attends to.

    `first` and `second` are (H, W) grids of group indices (:func:`group_of` reshaped); `token`
    is (row, column). Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    row, col = token
    both = (first == first[row, col]).int() + 2 * (second == second[row, col]).int()
    panels = [
        (first, "tab10", 9, f"first pass: {int(first.max()) + 1} contiguous groups"),
        (second, "tab10", 9, f"recursive pass: {int(second.max()) + 1} groups after the permutation"),
        (both, ListedColormap(["white", "tab:green", "tab:purple", "black"]), 3,
         "what the starred token attends to\ngreen: first pass only, purple: recursive only, black: both"),
    ]  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    for ax, (grid, cmap, vmax, name) in zip(axes, panels):
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=vmax)
        ax.set_title(name, fontsize=10)
        ax.set(xticks=[], yticks=[])
    axes[2].plot(col, row, "*", color="gold", markersize=14, markeredgecolor="black")
    fig.suptitle(title)
    return fig


def show_lab_images(n: int = 8, seed: int = 0):
    """`n` laboratory images with their labels, the rows of the 4x4 token grid and the midline. Returns the figure."""
    import matplotlib.pyplot as plt

    from ..data.shapes import ShapesDataset

    examples = ShapesDataset(n, 32, seed=seed)
    fig, axes = plt.subplots(1, n, figsize=(1.5 * n, 2.2))
    for i, ax in enumerate(axes):
        image, label = examples[i]
        ax.imshow(image, extent=(0, 32, 32, 0))
        for line in (8, 24):  # rows of tokens (the stem has stride 8)
            ax.axhline(line, color="white", lw=0.5, alpha=0.6)
        ax.axhline(16, color="white", lw=2)  # the boundary between two contiguous groups
        ax.set_title(examples.classes[label], fontsize=9)
        ax.axis("off")
    return fig


def lab_config(attention: str, seed: int, n_train: int, n_test: int, epochs: int, batch_size: int = 32,
               lr: float = 2e-3, num_workers: int = 0) -> TrainConfig:  # fmt: skip
    """The laboratory's training run for one kind of attention (a key of ``LAB_ATTENTION``) and one seed.

    AdamW with a cosine schedule, no augmentation (a crop could cut an object away), no label
    smoothing; the seed fixes the initialisation and the order of the batches, not the images.
    """
    return TrainConfig(model="sret_nano", model_kwargs=lab_model_kwargs(attention), dataset="shapes",
                       dataset_options=dict(n_train=n_train, n_test=n_test), img_size=32, epochs=epochs,
                       batch_size=batch_size, lr=lr, warmup_epochs=0.5, label_smoothing=0.0, seed=seed,
                       num_workers=num_workers, progress=False)  # fmt: skip


def lab_accuracy(cfg: TrainConfig, data_dir: str | Path | None = None) -> float:
    """Train ``cfg`` and return its last epoch's test top-1 (%).

    With ``data_dir``, the run is kept under ``<data_dir>/runs`` (:func:`sret_mini.book.load_or_train`):
    running the cell again reloads it instead of training again.
    """
    from ..engine.loop import train
    from .runs import load_or_train

    # the folder's name ends in a hash of the whole configuration, so every arm gets its own
    result = train(cfg) if data_dir is None else load_or_train(cfg, f"shapes-lab-seed{cfg.seed}", data_dir)
    return float(result.history[-1]["test_top1"])
