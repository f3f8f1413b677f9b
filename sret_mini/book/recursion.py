"""Chapter 2's helpers: the three networks of the recursion experiment, at equal parameters, and their training.

The laboratory model is one stage of SReT on the `pointers` images: a stride-4 stem turns every
4-pixel cell into one token, then ONE shared transformer block runs once or twice. The arms:

* ``single pass``: the block applied once (no recursion);
* ``naive recursion``: the same block applied twice, plain residuals, no NLL;
* ``SReT``: the block applied twice, an NLL after each application, learnable residual
  coefficients. The two NLLs are paid for by a narrower MLP in the block (hidden width
  ``mlp_ratio - 2 * nll_mlp_ratio``), so the three arms hold the same number of weights to within
  the NLLs' LayerNorms and biases.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.loop import train
from ..engine.train_config import TrainConfig
from ..flops import count_macs, count_params
from ..registry import create_model

#: what the three arms change, beyond the common laboratory model
ARMS = ("single pass", "naive recursion", "SReT")


def lab_arms(dim: int = 64, heads: int = 2, mlp_ratio: float = 4.0, nll_mlp_ratio: float = 0.5) -> dict[str, dict]:
    """`create_model("sret_nano", **options)` options of each arm (see the module docstring)."""
    if mlp_ratio <= 2 * nll_mlp_ratio:
        raise ValueError(f"mlp_ratio={mlp_ratio} must exceed 2 * nll_mlp_ratio={nll_mlp_ratio}: SReT's block "
                         "pays for its two NLLs with MLP width")  # fmt: skip
    lab = dict(dims=(dim,), heads=(heads,), unique_blocks=(1,), groups_first=(1,), groups_recursive=(1,),
               shuffle="none", stem_stride=4, drop_path_rate=0.0)  # fmt: skip
    return {
        "single pass": dict(lab, loops=1, nll=False, lrc=False, mlp_ratio=mlp_ratio),
        "naive recursion": dict(lab, loops=2, nll=False, lrc=False, mlp_ratio=mlp_ratio),
        "SReT": dict(
            lab, loops=2, nll=True, lrc=True, mlp_ratio=mlp_ratio - 2 * nll_mlp_ratio, nll_mlp_ratio=nll_mlp_ratio
        ),
    }


def arm_sizes(arms: dict[str, dict], img_size: int = 16, num_classes: int = 8) -> list[tuple]:
    """One row per arm: block applications, NLL, LRC, parameters, MACs of one image."""
    rows = []
    for name, options in arms.items():
        model = create_model("sret_nano", img_size=img_size, num_classes=num_classes, **options)
        rows.append((name, model.cfg.depth[0], "yes" if model.cfg.nll else "no", "yes" if model.cfg.lrc else "no",
                     f"{count_params(model):,}", f"{count_macs(model):,}"))  # fmt: skip
    return rows


def train_arms(arms: dict[str, dict], seeds: Sequence[int], **settings) -> tuple[dict, dict]:
    """Train every arm on every seed (same seeds, same data order); `settings` go to `TrainConfig`.

    Returns (test top-1 of the last epoch, arm -> one value per seed; trained models, arm -> list).
    """
    results, models = {}, {}
    for name, options in arms.items():
        runs = [train(TrainConfig(model="sret_nano", model_kwargs=options, seed=seed, progress=False, **settings))
                for seed in seeds]  # fmt: skip
        results[name] = [run.history[-1]["test_top1"] for run in runs]
        models[name] = [run.model for run in runs]
    return results, models


def coefficients(model) -> dict[str, float]:
    """The learnable residual coefficients of a one-stage model: shared block, then each NLL."""
    stage = model.stages[0]
    values = {f"block.{n}": getattr(stage.blocks[0], n).item() for n in ("skip_attn", "scale_attn", "skip_mlp",
                                                                         "scale_mlp")}  # fmt: skip
    for i, nll in enumerate(stage.nlls):
        values |= {f"NLL {i + 1}.skip": nll.skip.item(), f"NLL {i + 1}.scale": nll.scale.item()}
    return values
