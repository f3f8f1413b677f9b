"""Helpers of the model-table chapter: stand-ins for the authors' checkpoint files, and their aliases.

The authors' files cannot be fetched automatically (they are on Google Drive), so the chapter makes
a stand-in: a freshly built model whose every tensor is random and distinct, written in the
authors' layout by :func:`sret_mini.to_official` (each shared block under one key per
application, the keys aliases of one tensor) and saved as their training script saves it::

    from sret_mini.book import models
    authors = models.stand_in_state_dict("sret_t", seed=0)  # the authors' layout, in memory
    path = models.save_authors_file(authors, folder / "SReT_T.pth")
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..convert import to_official
from ..registry import create_model


def randomise_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Make every tensor of `model` distinct, in place, and return the model.

    A fresh model sets many tensors to a constant (residual coefficients and norm weights to 1,
    biases and BatchNorm statistics to 0), so two of them could be swapped unseen. Each such
    tensor gets Gaussian noise of scale 0.1 (a BatchNorm variance stays positive); the rest keep
    their random initialisation. The noise depends only on `seed`.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or t.numel() == 0 or not bool((t == t.flatten()[0]).all()):
                continue
            noise = 0.1 * torch.randn(t.shape, generator=g, dtype=t.dtype)
            t.add_(noise.abs() if name.endswith("running_var") else noise)
    return model


def stand_in_state_dict(name: str, seed: int = 0, **kwargs) -> dict:
    """A random state dict of the variant `name` in the authors' layout (what their files hold).

    The model is built with torch's random-number generator seeded by `seed` (the global state is
    restored afterwards), made distinct by :func:`randomise_`, and converted by `to_official`, so
    the entries of one shared block are the same tensor, as in the authors' files. `kwargs` go to
    `create_model` (e.g. ``num_classes=10``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(name, **kwargs)
    return to_official(randomise_(model, seed).state_dict())


def save_authors_file(state_dict: dict, path: str | os.PathLike) -> Path:
    """Save `state_dict` as the authors' training script does: ``torch.save({"model": ...})``."""
    path = Path(path)
    torch.save({"model": state_dict}, path)
    return path


def aliases(state_dict: dict) -> dict[str, str]:
    """{key: the first key that holds the same tensor} for every key that repeats an earlier one.

    Two keys are aliases when they share memory (the same storage, offset and shape): `torch.save`
    then writes the numbers once, and `torch.load` gives back one tensor under both names.
    """
    first, out = {}, {}
    for key, t in state_dict.items():
        where = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if where in first:
            out[key] = first[where]
        else:
            first[where] = key
    return out
