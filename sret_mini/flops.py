"""Counting parameters and multiply-accumulates (MACs) the way the authors' table counts them.

MACs are `torch.utils.flop_counter.FlopCounterMode` FLOPs / 2 for one image: convolutions, matrix
products and attention are counted; element-wise work (LayerNorm, GELU, additions) is not. The
forward pass runs on PyTorch's "meta" device, which computes shapes only, so counting even the
512 px SReT-S (43 GMACs) takes a fraction of a second and no memory.
"""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .model_config import to_2tuple


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters; a shared block counts once however often it is applied."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _input_size(model: nn.Module, img_size) -> tuple[int, int, int]:
    in_chans = getattr(model, "in_chans", 3)
    if img_size is None:
        if hasattr(model, "cfg"):
            return (in_chans, *model.cfg.img_size)
        pretrained = getattr(model, "pretrained_cfg", None) or {}
        if "input_size" not in pretrained:
            raise ValueError("give img_size: this model does not record its input size")
        return tuple(pretrained["input_size"])
    return (in_chans, *to_2tuple(img_size))


def _meta(t: torch.Tensor) -> torch.Tensor:
    meta = t.detach().to("meta")
    return nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta


def _counted(module: nn.Module, *args, **kwargs) -> FlopCounterMode:
    """Run `module(*args, **kwargs)` on the meta device under a FlopCounterMode and return the counter.

    The module is copied with meta tensors in place of its weights (shapes without data, so
    nothing is copied) and every tensor argument becomes a meta tensor of the same shape. On real
    CPU tensors, torch >= 2.14's counter skips the kernel of `scaled_dot_product_attention`; on
    the meta device it counts attention like every other operator.
    """
    memo = {id(t): _meta(t) for t in (*module.parameters(), *module.buffers())}
    twin = copy.deepcopy(module, memo).eval()
    args = [torch.empty(a.shape, dtype=a.dtype, device="meta") if torch.is_tensor(a) else a for a in args]
    # no torch.no_grad(): on the meta device autograd costs nothing, and torch's module tracker
    # (inside FlopCounterMode) fails under no_grad for models such as timm's PiT
    with FlopCounterMode(display=False) as counter:
        twin(*args, **kwargs)
    return counter


def count_macs(model: nn.Module, img_size: int | tuple[int, int] | None = None, loops=None) -> int:
    """Multiply-accumulates of one forward pass of one image (default: the model's own input size).

    `loops`: for an SReT, the call-time depth of `model(x, loops=...)` (an int, one per stage, or
    None for the depth it was built with). The parameter count does not depend on it.
    """
    x = torch.empty(1, *_input_size(model, img_size))
    if loops is None:
        return _counted(model, x).get_total_flops() // 2
    if "loops" not in inspect.signature(model.forward).parameters:
        raise ValueError(f"loops={loops!r}: {type(model).__name__}.forward takes no loops; count it with loops=None")
    return _counted(model, x, loops=loops).get_total_flops() // 2


def count_call_macs(module: nn.Module, *args) -> int:
    """Multiply-accumulates of `module(*args)`, for any module (one attention layer, one block).

    Example:
        >>> from sret_mini import SlicedGroupAttention
        >>> layer = SlicedGroupAttention(dim=64, heads=2)
        >>> count_call_macs(layer, torch.empty(1, 196, 64), 4)  # 196 tokens in 4 groups
        4440576
    """
    return _counted(module, *args).get_total_flops() // 2


def macs_by_module(model: nn.Module, img_size: int | tuple[int, int] | None = None) -> dict[str, dict[str, int]]:
    """Forward MACs of one image, by module and operator: {"stages.0.blocks.0.attn": {"aten.mm": n}}.

    Each module's count includes its submodules'; the model itself is the key "". Operators are
    named as torch names them (`str(torch.ops.aten.mm)` is "aten.mm").
    """
    x = torch.empty(1, *_input_size(model, img_size))
    counts = _counted(model, x).get_flop_counts()
    # the counter names modules "<Class>.<path>" after "Global", the whole pass
    root = type(model).__name__
    return {
        "" if name == root else name.removeprefix(root + "."): {str(op): flops // 2 for op, flops in ops.items()}
        for name, ops in counts.items()
        if name == root or name.startswith(root + ".")
    }


def official_comparison() -> list[dict]:
    """Our parameter and MAC counts beside the authors' table, one row per released variant."""
    from .registry import create_model, official_table

    rows = []
    for ref in official_table():
        model = create_model(ref["sret_mini_name"])
        params, macs = count_params(model), count_macs(model, ref["input_size"])
        rows.append(
            dict(
                official_name=ref["official_name"],
                name=ref["sret_mini_name"],
                input_size=ref["input_size"],
                params=params,
                official_params=ref["params"],
                macs=macs,
                official_macs=ref["macs"],
                macs_rel_diff=macs / ref["macs"] - 1,
                top1=ref["readme_top1"],
            )
        )
    return rows
