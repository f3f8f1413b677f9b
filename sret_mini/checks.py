"""Checks of user-given values, each failing with a message that names the value and the fix.

The configurations (`SReTConfig`, `TrainConfig`) call these when they are made, so that a wrong
value is refused before torch or timm sees it (where it would become a ZeroDivisionError, an
assertion deep in a scheduler, or a silently different run).
"""

from __future__ import annotations

import numbers

import torch


def integer(name: str, value, low: int | None = None) -> int:
    """`value` as an int; a bool, a float with a fraction, a string or one below `low` is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name}={value!r} must be a whole number{f' >= {low}' if low is not None else ''}")
    if low is not None and value < low:
        raise ValueError(f"{name}={value} must be >= {low}")
    return int(value)


def number(name: str, value, low: float | None = None, high: float | None = None, open_high: bool = False) -> float:
    """`value` as a float in [low, high] (or [low, high) with `open_high`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number")
    value = float(value)
    too_high = high is not None and (value >= high if open_high else value > high)
    if (low is not None and value < low) or too_high:
        bounds = (
            f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{')' if open_high else ']'}"
        )
        raise ValueError(f"{name}={value} must be in {bounds}")
    return value


def mapping(name: str, value) -> dict:
    """`value` if it is a dict (e.g. model options given as JSON on the command line)."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict of options (JSON object such as '{{\"loops\": 3}}'), got {value!r}")
    return value


def choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: choose one of {', '.join(map(repr, choices))}")
    return value


def image_batch(x: torch.Tensor, in_chans: int) -> None:
    """`x` must be a (B, in_chans, H, W) batch: a model's first check of its input."""
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images of shape (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != in_chans:
        raise ValueError(
            f"expected {in_chans} input channels, got {x.shape[1]} (input shape {tuple(x.shape)}). "
            f"Convert the images (e.g. grayscale to RGB with x.expand(-1, 3, -1, -1)) or create the "
            f"model with in_chans={x.shape[1]}."
        )
