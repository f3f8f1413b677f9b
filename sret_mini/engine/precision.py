"""Mixed precision: which one a device should use, and the autocast context for it."""

from __future__ import annotations

from contextlib import nullcontext

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU computes in bf16 natively (compute capability 8.0 or newer: A100, H100, ...).

    `torch.cuda.is_bf16_supported()` also says yes for older GPUs (a T4) that only emulate it,
    slowly; mixed precision there should be fp16.
    """
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_amp(amp: str, device: torch.device) -> str:
    """The mixed precision of `amp` on `device`: "auto" is bf16 on GPUs with native bf16, fp16 on
    older GPUs, none on the CPU."""
    if amp == "auto":
        if device.type != "cuda":
            return "none"
        return "bf16" if native_bf16(device) else "fp16"
    if amp not in ("bf16", "fp16", "none"):
        raise ValueError(f"amp={amp!r}: choose 'auto', 'bf16', 'fp16' or 'none'")
    return amp


def autocast(device: torch.device, amp: str):
    """The autocast context for 'bf16', 'fp16' or 'none'."""
    if amp == "none":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
