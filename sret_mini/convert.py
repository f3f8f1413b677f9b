"""Conversion between the authors' checkpoint layout and ours.

The official code builds each stage as one flat `nn.ModuleList` in which every shared block is
listed once per application, followed by that application's NLL::

    transformers.{s}.blocks.{2a}      shared block a // loops   (the same module `loops` times)
    transformers.{s}.blocks.{2a + 1}  NLL of application a
    pools.{s}.conv                    pooling after stage s

so a checkpoint stores each shared block `loops` times (aliases of one tensor). Our layout keeps
each tensor once::

    stages.{s}.blocks.{b}             shared block b
    stages.{s}.nlls.{a}               NLL of application a
    stages.{s + 1}.downsample.conv    pooling before stage s + 1

and renames the residual coefficients (coefficientK.bias) after what they scale.
"""

from __future__ import annotations

import re
from collections import defaultdict

import torch

from .layers import resize_pos_embed

# official suffix -> our suffix, inside a transformer block and inside an NLL
BLOCK_RENAMES = {
    "coefficient1.bias": "skip_attn",
    "coefficient2.bias": "scale_attn",
    "coefficient3.bias": "skip_mlp",
    "coefficient4.bias": "scale_mlp",
}
NLL_RENAMES = {
    "norm1.weight": "norm.weight",
    "norm1.bias": "norm.bias",
    "coefficient1.bias": "skip",
    "coefficient2.bias": "scale",
}
BLOCK_KEYS = (
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
    "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
    *BLOCK_RENAMES,
)  # fmt: skip
NLL_KEYS = ("norm1.weight", "norm1.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
            "coefficient1.bias", "coefficient2.bias")  # fmt: skip
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile

_OFFICIAL_ENTRY = re.compile(r"^transformers\.(\d+)\.blocks\.(\d+)\.(.+)$")
_OFFICIAL_POOL = re.compile(r"^pools\.(\d+)\.(.+)$")
_OUR_BLOCK = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.(.+)$")
_OUR_NLL = re.compile(r"^stages\.(\d+)\.nlls\.(\d+)\.(.+)$")
_OUR_POOL = re.compile(r"^stages\.(\d+)\.downsample\.(.+)$")
_TOP_LEVEL = re.compile(r"^(pos_embed|patch_embed\..+|norm\..+|head\..+)$")


def strip_wrapper_prefixes(state_dict: dict) -> dict:
    """Remove the `module.` (DDP) and `_orig_mod.` (torch.compile) prefixes shared by every key."""
    for p in WRAPPER_PREFIXES:
        if state_dict and all(k.startswith(p) for k in state_dict):
            state_dict = {k[len(p) :]: v for k, v in state_dict.items()}
    return state_dict


def is_official(state_dict: dict) -> bool:
    """Whether a state dict is in the authors' layout."""
    return any(_OFFICIAL_ENTRY.match(k) or _OFFICIAL_POOL.match(k) for k in state_dict)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    same_storage = a.device.type != "meta" and a.data_ptr() == b.data_ptr()
    return a.shape == b.shape and (same_storage or torch.equal(a, b))


def _infer_loops(apps: list[dict]) -> int:
    """Applications of one shared block are stored as equal tensors: count how many lead the list."""
    first = apps[0]
    loops = 1
    while loops < len(apps) and all(_same(apps[loops][k], first[k]) for k in first):
        loops += 1
    return loops


def from_official(state_dict: dict, loops: int | tuple[int, ...] | None = None) -> dict:
    """Convert an official SReT state dict to ours.

    Checks that the stored copies of each shared block are equal, strips a `module.` prefix, and
    raises ValueError naming every key that is missing or not part of the official layout.
    `loops` (per stage, or one int) is inferred from the aliases when not given.
    """
    state_dict = strip_wrapper_prefixes(dict(state_dict))
    out, unexpected = {}, []
    entries = defaultdict(lambda: defaultdict(dict))  # stage -> list index -> {suffix: tensor}
    for key, value in state_dict.items():
        if m := _OFFICIAL_ENTRY.match(key):
            entries[int(m[1])][int(m[2])][m[3]] = value
        elif m := _OFFICIAL_POOL.match(key):
            out[f"stages.{int(m[1]) + 1}.downsample.{m[2]}"] = value
        elif _TOP_LEVEL.match(key):
            out[key] = value
        else:
            unexpected.append(key)
    if unexpected:
        raise ValueError(f"keys not in the official SReT layout: {unexpected}; is this an SReT checkpoint?")
    if not entries:
        raise ValueError("no 'transformers.*' keys: this is not a state dict in the official SReT layout")

    missing = []
    for s in sorted(entries):
        listed = entries[s]
        if sorted(listed) != list(range(len(listed))) or len(listed) % 2:
            raise ValueError(
                f"stage {s}: the official list transformers.{s}.blocks must hold block/NLL pairs with "
                f"consecutive indices, found indices {sorted(listed)}"
            )
        apps = [listed[2 * a] for a in range(len(listed) // 2)]
        nlls = [listed[2 * a + 1] for a in range(len(listed) // 2)]
        for a, (blk, nll) in enumerate(zip(apps, nlls)):
            missing += [f"transformers.{s}.blocks.{2 * a}.{k}" for k in BLOCK_KEYS if k not in blk]
            missing += [f"transformers.{s}.blocks.{2 * a + 1}.{k}" for k in NLL_KEYS if k not in nll]
            extra = [k for k in blk if k not in BLOCK_KEYS] + [k for k in nll if k not in NLL_KEYS]
            if extra:
                raise ValueError(f"keys not in the official SReT layout in stage {s}, application {a}: {extra}")
        if missing:
            continue
        n = len(apps)
        stage_loops = (loops if isinstance(loops, int) else loops[s]) if loops is not None else _infer_loops(apps)
        if n % stage_loops:
            raise ValueError(f"stage {s}: {n} applications cannot be {stage_loops} loops of shared blocks")
        for a, blk in enumerate(apps):
            b, repeat = divmod(a, stage_loops)
            if repeat:  # a later application: only check that it is a copy of the first
                ref = apps[b * stage_loops]
                for k in BLOCK_KEYS:
                    if not _same(blk[k], ref[k]):
                        raise ValueError(
                            f"transformers.{s}.blocks.{2 * a}.{k} should be a copy of "
                            f"transformers.{s}.blocks.{2 * b * stage_loops}.{k} (the same shared block applied "
                            f"again) but differs: the checkpoint is corrupt or was not made with {stage_loops} loops"
                        )
                continue
            for k in BLOCK_KEYS:
                out[f"stages.{s}.blocks.{b}.{BLOCK_RENAMES.get(k, k)}"] = blk[k]
        for a, nll in enumerate(nlls):
            for k in NLL_KEYS:
                out[f"stages.{s}.nlls.{a}.{NLL_RENAMES.get(k, k)}"] = nll[k]
    if missing:
        raise ValueError(f"official SReT state dict is missing keys: {missing}")
    return out


def to_official(state_dict: dict) -> dict:
    """Convert our state dict to the official layout (each shared block listed once per loop).

    The repeated entries are the same tensor objects, as in the authors' files. The layout has one
    NLL per application: a model made with nll_share > 1 (sret_deep1000) has no official form, and
    its state dict cannot tell this function so.
    """
    state_dict = strip_wrapper_prefixes(dict(state_dict))
    blocks, nlls, out = defaultdict(dict), defaultdict(dict), {}
    for key, value in state_dict.items():
        if m := _OUR_BLOCK.match(key):
            blocks[(int(m[1]), int(m[2]))][m[3]] = value
        elif m := _OUR_NLL.match(key):
            nlls[(int(m[1]), int(m[2]))][m[3]] = value
        elif m := _OUR_POOL.match(key):
            out[f"pools.{int(m[1]) - 1}.{m[2]}"] = value
        elif _TOP_LEVEL.match(key):
            out[key] = value
        else:
            raise ValueError(f"key {key!r} is not part of the sret_mini layout")
    if no_nll := sorted({s for s, _ in blocks} - {s for s, _ in nlls}):
        raise ValueError(
            f"stages {no_nll} have shared blocks but no NLLs: the official layout interleaves every "
            "application with its NLL, so only models made with nll=True can be written in it"
        )
    block_back = {v: k for k, v in BLOCK_RENAMES.items()}
    nll_back = {v: k for k, v in NLL_RENAMES.items()}
    for s in sorted({s for s, _ in nlls}):
        num_blocks = sum(1 for t, _ in blocks if t == s)
        num_apps = sum(1 for t, _ in nlls if t == s)
        if num_blocks == 0 or num_apps % num_blocks:
            raise ValueError(f"stage {s}: {num_apps} NLLs do not divide among {num_blocks} shared blocks")
        loops = num_apps // num_blocks
        for a in range(num_apps):
            for k, v in blocks[(s, a // loops)].items():
                out[f"transformers.{s}.blocks.{2 * a}.{block_back.get(k, k)}"] = v
            for k, v in nlls[(s, a)].items():
                out[f"transformers.{s}.blocks.{2 * a + 1}.{nll_back.get(k, k)}"] = v
    return out


# ---------------------------------------------------------------------------------------------
# describing a state dict, to say which variant a checkpoint belongs to


def describe(state_dict: dict) -> dict:
    """Architecture facts readable from a state dict in our layout (widths, blocks, hidden sizes)."""
    stages = sorted({int(m[1]) for k in state_dict if (m := _OUR_NLL.match(k))})
    info = dict(dims=[], unique_blocks=[], depth=[], mlp_hidden=None, nll_hidden=None)
    for s in stages:
        info["dims"].append(state_dict[f"stages.{s}.nlls.0.norm.weight"].shape[0])
        info["unique_blocks"].append(
            len({int(m[2]) for k in state_dict if (m := _OUR_BLOCK.match(k)) and int(m[1]) == s})
        )
        info["depth"].append(len({int(m[2]) for k in state_dict if (m := _OUR_NLL.match(k)) and int(m[1]) == s}))
    if stages:
        info["mlp_hidden"] = state_dict["stages.0.blocks.0.mlp.fc1.weight"].shape[0]
        info["nll_hidden"] = state_dict["stages.0.nlls.0.mlp.fc1.weight"].shape[0]
    if "pos_embed" in state_dict:
        info["grid"] = tuple(state_dict["pos_embed"].shape[-2:])
    if "head.weight" in state_dict:
        info["num_classes"] = state_dict["head.weight"].shape[0]
    return info


def matching_variants(state_dict: dict, variants: dict) -> list[str]:
    """Names of `variants` ({name: SReTConfig}, e.g. `sret_mini.VARIANTS`) whose weights have the shapes
    of this (our-layout) state dict."""
    d = describe(state_dict)
    names = []
    for name, cfg in variants.items():
        same = (
            list(cfg.dims) == d["dims"]
            and list(cfg.unique_blocks) == d["unique_blocks"]
            and list(cfg.depth) == d["depth"]
            and int(cfg.dims[0] * cfg.mlp_ratio) == d["mlp_hidden"]
            and int(cfg.dims[0] * cfg.nll_mlp_ratio) == d["nll_hidden"]
        )
        if same:
            names.append(name)
    return names


def variant_hint(state_dict: dict, variants: dict | None = None) -> str:
    """What to create instead: the fitting names of `variants`, else the shapes the checkpoint has."""
    names = matching_variants(state_dict, variants) if variants else []
    if names:
        return f"The checkpoint has the shapes of {', '.join(names)}: create one of those instead."
    d = describe(state_dict)
    return (
        f"The checkpoint has widths {d['dims']}, {d['unique_blocks']} shared blocks and {d['depth']} applications "
        f"per stage (MLP hidden {d['mlp_hidden']}, NLL hidden {d['nll_hidden']}): build an SReTConfig with these."
    )


def adapt_state_dict(
    state_dict: dict, model, prefix: str = "", strict: bool = True, variants: dict | None = None
) -> None:
    """Make a state dict loadable into an `SReT` model, in place.

    Converts the official layout, resizes the position embedding (bicubic) to the model's grid,
    and raises ValueError when a tensor's shape says the checkpoint is for another variant (naming
    the fitting entries of `variants`, when given).
    """
    own = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    local = strip_wrapper_prefixes({k[len(prefix) :]: v for k, v in own.items()})
    if is_official(local):
        local = from_official(local)
    pos = local.get("pos_embed")
    if pos is not None and pos.ndim == 4 and pos.shape[:2] == model.pos_embed.shape[:2]:
        local["pos_embed"] = resize_pos_embed(pos, model.pos_embed.shape[-2:])

    expected = model.state_dict()
    wrong = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in local.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        head_only = all(w.startswith("head.") for w in wrong)
        fix = (
            "Create the model with the checkpoint's num_classes, or load with sret_mini.load_checkpoint, which "
            "drops a classifier of another size and says so."
            if head_only
            else variant_hint(local, variants)
        )
        raise ValueError(f"checkpoint does not fit this model ({len(wrong)} shape mismatches: {wrong[:4]}). {fix}")

    for k in own:
        del state_dict[k]
    state_dict.update({prefix + k: v for k, v in local.items()})
