"""Timing a call the way `torch.utils.benchmark` does: warm-up, enough runs, the median; and threads."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

# torch.utils.benchmark imports torch.utils.cpp_extension, which logs a warning on a CPU-only
# machine that has a CUDA_HOME; nothing here compiles extensions, so that warning is noise
_cpp_log = logging.getLogger("torch.utils.cpp_extension")
_level = _cpp_log.level
_cpp_log.setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

_cpp_log.setLevel(_level)


@dataclass(frozen=True)
class Timing:
    """The median time of one call and the spread of the measured blocks, in milliseconds."""

    median_ms: float
    iqr_ms: float
    runs: int

    def __str__(self) -> str:
        return f"{self.median_ms:.2f} ms (IQR {self.iqr_ms:.2f}, {self.runs} runs)"


def time_call(fn: Callable, *args, min_run_time: float = 0.5, **kwargs) -> Timing:
    """Time `fn(*args, **kwargs)` with `torch.utils.benchmark.Timer.blocked_autorange`.

    The timer synchronises CUDA around each block, uses the current number of torch threads, and
    runs the call until `min_run_time` seconds have been measured (after a warm-up call).
    """
    fn(*args, **kwargs)  # warm-up: allocations, lazy initialisation, autotuning
    timer = benchmark.Timer(stmt="fn(*args, **kwargs)", globals=dict(fn=fn, args=args, kwargs=kwargs),
                            num_threads=torch.get_num_threads())  # fmt: skip
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return Timing(median_ms=m.median * 1e3, iqr_ms=m.iqr * 1e3, runs=len(m.times) * m.number_per_run)


@contextlib.contextmanager
def cpu_threads(n: int):
    """Run the block with `n` torch threads, then restore the previous number.

    Networks this small train fastest on one CPU thread: with more, the threads mostly wait for
    each other.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
