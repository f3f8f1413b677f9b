"""Reading and writing checkpoint files safely.

* Reading never runs code: `torch.load(..., weights_only=True)` (plus `argparse.Namespace`, which
  DeiT-style training scripts store and which holds only values), or safetensors. A file that is
  not a checkpoint (empty, text, damaged) is refused with one message that names it.
* Writing is atomic (`sret_mini.engine.files.atomic_write`), so an interrupted save never leaves a
  truncated checkpoint behind, and a saved dict carries the checksum of its tensors: a file whose
  bytes changed on disk is refused when read, instead of giving wrong predictions.
"""

from __future__ import annotations

import argparse
import os
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors

from ..convert import adapt_state_dict, is_official, strip_wrapper_prefixes, variant_hint
from ..variants import VARIANTS
from .files import atomic_write, tensor_checksum

STATE_DICT_KEYS = ("model", "state_dict")


#: the key under which `save_atomic` stores the checksum of a dict's tensors
CHECKSUM_KEY = "sret_mini_checksum"
#: the mark `load_checkpoint` leaves in a state dict's metadata once it has adapted the dict, so that
#: the registry's `load_state_dict` hook (which adapts whatever else is loaded) leaves it as it is
ADAPTED = "sret_mini_adapted"


def mark_adapted(state_dict: dict) -> OrderedDict:
    """The state dict, marked as converted to this model's layout (see `ADAPTED`)."""
    marked = OrderedDict(state_dict)
    marked._metadata = {"": {ADAPTED: True}}
    return marked


def load_file(path: str | os.PathLike) -> dict:
    """Load a checkpoint file (.pth/.pt or .safetensors) without executing any code.

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not a checkpoint, is damaged, or stores Python objects (code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path (relative to {Path.cwd()})")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not a checkpoint: it was never written completely")
    if path.suffix == ".safetensors":
        try:
            return load_safetensors(str(path), device="cpu")
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{path} is not a readable safetensors file ({e})") from e
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # torch.save's zip archive, or a legacy pickle
        raise ValueError(f"{path} is not a PyTorch checkpoint (it starts with {magic!r}, not a torch.save file)")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise ValueError(f"{path} is not a PyTorch checkpoint, or it is damaged ({e})") from e
        raise ValueError(
            f"{path} stores Python objects that weights_only loading refuses ({e}). sret_mini never "
            "unpickles code; re-save the file from a trusted environment with torch.save(model.state_dict())."
        ) from e
    except (RuntimeError, EOFError, KeyError, OSError) as e:  # an archive cut short or damaged
        raise ValueError(f"{path} is not a PyTorch checkpoint, or it is damaged ({e})") from e
    return verified(checkpoint, path)


def verified(checkpoint, path: Path):
    """The checkpoint without its checksum, after checking that its tensors still match it."""
    if not (isinstance(checkpoint, dict) and CHECKSUM_KEY in checkpoint):
        return checkpoint  # not written by save_atomic (the authors' files, older runs)
    checkpoint = dict(checkpoint)
    stored = checkpoint.pop(CHECKSUM_KEY)
    if tensor_checksum(checkpoint) != stored:
        raise ValueError(
            f"{path} is corrupted: its tensors no longer match the checksum stored when it was written "
            "(the file changed on disk). Restore it from a copy; a run folder's last.pt and best.pt can "
            "also be made again by training."
        )
    return checkpoint


def extract_state_dict(checkpoint: dict, use_ema: bool = False) -> dict:
    """The model weights inside a checkpoint: its 'model' (or 'state_dict') entry, or the dict itself.

    With `use_ema`, the exponential moving average is used instead: 'ema' in sret_mini's training
    files, 'model_ema' in DeiT-style ones.
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f"a checkpoint must be a dict of tensors or hold one, got {type(checkpoint).__name__}")
    if use_ema:
        key = next((k for k in ("ema", "model_ema") if isinstance(checkpoint.get(k), dict)), None)
        if key is None:
            raise ValueError(
                f"use_ema=True (--ema) but the checkpoint holds no EMA weights (keys: {sorted(checkpoint)}): "
                "train with --ema to keep them, or evaluate without --ema"
            )
        return strip_wrapper_prefixes(checkpoint[key])
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
    # converted once, here: the mark tells the registry's load hook not to adapt it again
    return model.load_state_dict(mark_adapted(state_dict), strict=strict and strict_head)


def save_atomic(obj, path: str | os.PathLike) -> Path:
    """`torch.save(obj, path)`, atomically; a dict is saved with the checksum of its tensors."""
    if isinstance(obj, dict):
        obj = {**obj, CHECKSUM_KEY: tensor_checksum(obj)}
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
