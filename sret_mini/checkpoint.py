"""Reading and writing checkpoint files safely.

* Reading never runs code: `torch.load(..., weights_only=True)` (plus `argparse.Namespace`, which
  DeiT-style training scripts store and which holds only values), or safetensors.
* Writing is atomic: the file is written under a temporary name in the same folder and renamed,
  so an interrupted save never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch

from .convert import adapt_state_dict, is_official, strip_wrapper_prefixes, variant_hint
from .variants import VARIANTS

STATE_DICT_KEYS = ("model", "state_dict")


def load_file(path: str | os.PathLike) -> dict:
    """Load a checkpoint file (.pth/.pt or .safetensors) without executing any code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path (relative to {Path.cwd()})")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors

        return load_safetensors(str(path), device="cpu")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path} stores Python objects that weights_only loading refuses ({e}). sret_mini never "
            "unpickles code; re-save the file from a trusted environment with torch.save(model.state_dict())."
        ) from e


def extract_state_dict(checkpoint: dict, use_ema: bool = False) -> dict:
    """The model weights inside a checkpoint: its 'model' (or 'state_dict') entry, or the dict itself.

    With `use_ema`, the 'model_ema' entry is used instead (DeiT-style and sret_mini training files).
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f"a checkpoint must be a dict of tensors or hold one, got {type(checkpoint).__name__}")
    if use_ema:
        if checkpoint.get("model_ema") is None:
            raise ValueError(f"use_ema=True but the checkpoint has no 'model_ema' entry (keys: {sorted(checkpoint)})")
        return strip_wrapper_prefixes(checkpoint["model_ema"])
    for key in STATE_DICT_KEYS:
        if isinstance(checkpoint.get(key), dict):
            return strip_wrapper_prefixes(checkpoint[key])
    return strip_wrapper_prefixes(checkpoint)


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike, strict: bool = True, use_ema: bool = False):
    """Load weights from a file (official or sret_mini layout) into `model`, checking every key.

    A classifier of another size (e.g. ImageNet weights into a 10-class model) is not loaded and a
    warning says so. Any other difference raises ValueError naming the keys and the fix.
    Returns the result of `model.load_state_dict`.
    """
    state_dict = extract_state_dict(load_file(path), use_ema=use_ema)
    if not hasattr(model, "cfg"):  # not an SReT: a plain load
        return model.load_state_dict(state_dict, strict=strict)

    state_dict = dict(state_dict)
    expected = model.state_dict()
    head = [k for k in ("head.weight", "head.bias") if k in state_dict]
    if head and (
        "head.weight" not in expected or tuple(state_dict["head.weight"].shape) != tuple(expected["head.weight"].shape)
    ):
        n_ckpt = state_dict["head.weight"].shape[0]
        warnings.warn(
            f"{path}: the checkpoint's classifier has {n_ckpt} classes and the model's {model.num_classes}; "
            "the classifier is not loaded and keeps its fresh initialisation (fine-tuning).",
            stacklevel=2,
        )
        for k in head:
            del state_dict[k]
        strict_head = False
    else:
        strict_head = True

    origin = "official" if is_official(state_dict) else "sret_mini"
    adapt_state_dict(state_dict, model, variants=VARIANTS)  # converts, resizes pos_embed, checks shapes
    missing = sorted(set(expected) - set(state_dict) - ({"head.weight", "head.bias"} if not strict_head else set()))
    unexpected = sorted(set(state_dict) - set(expected))
    if strict and (missing or unexpected):
        raise ValueError(
            f"{path} ({origin} layout) does not fit this model: {len(missing)} missing keys {missing[:6]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:6]}. {variant_hint(state_dict, VARIANTS)}"
        )
    return model.load_state_dict(state_dict, strict=strict and strict_head)


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """`torch.save(obj, path)`, written to a temporary file in the same folder and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
