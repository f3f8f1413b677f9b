"""Shared helpers: official key listings, random official state dicts, small valid input sizes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

import sret_mini

# pytest-xdist runs one worker per core: give each worker its share of the cores, and keep
# torch.compile from starting a pool of compile processes per worker
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

FIXTURES = Path(__file__).parent / "fixtures"
LISTINGS = sorted((FIXTURES / "official_keys").glob("*.txt"))
ROWS = {row["official_name"]: row for row in sret_mini.official_table()}


def read_listing(path: Path) -> list[tuple[str, tuple[int, ...], str | None]]:
    """(key, shape, alias_of) for every line of an official key listing."""
    entries = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape, *rest = line.split("\t")
        alias = rest[0].removeprefix("alias_of=") if rest else None
        entries.append((key, tuple(int(v) for v in re.findall(r"\d+", shape)), alias))
    return entries


def random_official_state_dict(path: Path, seed: int = 0) -> dict:
    """A random state dict in the official layout, aliases sharing one tensor as in the authors' files.

    Values are scaled so that every part of the network matters for the output: weights ~ N(0, 0.05),
    residual coefficients near 1, BatchNorm statistics away from the identity.
    """
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, alias in read_listing(path):
        if alias is not None:
            sd[key] = sd[alias]
        elif key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        elif "coefficient" in key:
            sd[key] = 1 + 0.3 * torch.randn(shape, generator=g)
        else:
            sd[key] = 0.05 * torch.randn(shape, generator=g)
    return sd


def smallest_valid_size(cfg: sret_mini.SReTConfig, candidates=range(32, 513, 32)) -> int:
    """The smallest square input (multiple of 32) whose stage grids divide by the groups."""
    for size in candidates:
        try:
            cfg.check_input_size((size, size))
            return size
        except ValueError:
            continue
    raise AssertionError(f"no valid input size for {cfg}")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
