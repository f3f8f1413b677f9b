"""Random-number generators: one seed for all of them, and their whole state, saved and restored.

A run is a function of its seed: `seed_everything` seeds Python's, NumPy's and torch's generators
(every CUDA device included). A checkpoint stores `rng_state()` in a form that
`torch.load(weights_only=True)` accepts, and a resumed run calls `set_rng_state` on it, so it draws
exactly the numbers the uninterrupted run would have drawn.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    np_kind, np_keys, np_pos, np_gauss, np_cached = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(keys=torch.from_numpy(np_keys.astype(np.int64)), pos=np_pos, has_gauss=np_gauss, cached=np_cached),
        python=random.getstate(),
    )
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
