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

# the results ship with the package (sret_mini/results, read by sret_mini.book.read_result);
# bench/results is a link to that folder
RESULTS = Path(__file__).parents[1] / "sret_mini" / "results"


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


def save(name: str, device: torch.device, results: list[dict], folder: str | Path | None = None) -> Path:
    """Write <folder>/<name>-<device type>.json (default folder: sret_mini/results) and return its path."""
    folder = Path(folder) if folder is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{device.type}.json"
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


def peak_rss_since_reset() -> int:
    """Peak resident memory (bytes) of this process since `reset_peak_rss()` (Linux)."""
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("VmHWM:"))) * 1024


def current_rss() -> int:
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("VmRSS:"))) * 1024


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (writing 5 to /proc/self/clear_refs resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def step_peak_memory(step, device: torch.device) -> int:
    """Bytes that one call of step() needs at its peak beyond what was allocated before it.

    On a GPU from torch's allocator statistics; on the CPU from the process's peak resident
    memory (see `run_isolated`'s `track_memory`).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    reset_peak_rss()
    before = current_rss()
    step()
    return peak_rss_since_reset() - before


def run_isolated(script: Path, spec: dict, timeout: int = 1800, track_memory: bool = True) -> dict:
    """Run `script --one JSON` in a fresh Python process and return the JSON it prints last.

    A fresh process measures its own peak memory. With `track_memory` (for CPU memory figures),
    MALLOC_MMAP_THRESHOLD_ makes glibc return every freed tensor above 64 KiB to the system, so
    resident memory follows live tensors; the page faults this costs slow the process down, so
    CPU timings come from a process without it.
    """
    import subprocess

    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    if track_memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    done = subprocess.run([sys.executable, str(script), "--one", json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
