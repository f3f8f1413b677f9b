"""Files that never lie: every write is atomic, and what holds tensors carries their checksum.

* `atomic_write` is the package's one way to write a file: into a temporary file in the same
  folder, flushed to disk, then renamed over the target. A run killed at any moment leaves either
  the old file or the new one, never half of one.
* `tensor_checksum` is the SHA-256 of every tensor in a nested structure (names, dtypes, shapes and
  bytes). Checkpoints and soft-label banks store it when written and are refused when read if their
  tensors no longer match it: a flipped byte on disk gives an error, not a wrong accuracy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)`, then rename the temporary file to `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def hash_tensor(digest, tensor: torch.Tensor) -> None:
    """Feed a tensor's bytes (any dtype, any device) to a hashlib digest."""
    digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def tensor_checksum(obj) -> str:
    """SHA-256 (hex) of every tensor in `obj` (dicts, lists, tuples), with where each sits in it."""
    digest = hashlib.sha256()

    def visit(value, where: str) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(f"{where}:{value.dtype}:{tuple(value.shape)};".encode())
            hash_tensor(digest, value)
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                visit(value[key], f"{where}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, f"{where}/{i}")

    visit(obj, "")
    return digest.hexdigest()
