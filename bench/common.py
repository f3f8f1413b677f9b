"""Shared by the benchmarks: what machine this is, and saving results with how they were made."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def environment(device: torch.device) -> dict:
    import timm

    return dict(
        device=device_name(device), device_type=device.type, torch=torch.__version__, timm=timm.__version__,
        python=platform.python_version(), command=" ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip


def save(name: str, device: torch.device, results: list[dict]) -> Path:
    """Write results/<name>-<device type>.json and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{device.type}.json"
    path.write_text(json.dumps(dict(environment(device), results=results), indent=2) + "\n")
    return path


def timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of fn(), after `warmup` calls, synchronising the GPU around the timing."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps
