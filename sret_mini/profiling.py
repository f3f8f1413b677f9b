"""Where the time of one training step goes, by part of the network.

:func:`profile_step` runs a few warm-up steps, then records training steps (forward, loss, backward,
optimizer step) with `torch.profiler`. Forward hooks open a `record_function` range around each
part of the network (the stem, each stage's attention, MLPs and NLLs, the pooling, the head;
:func:`network_parts` names them), so every forward operator lies inside the range of its part.
The backward pass runs in autograd's engine, outside any module; but each backward node carries
the *sequence number* of the forward operator that made it, so its time goes to the same part.

Every operator's *self* time (its own, not its callees') counts once, so the parts add up to the
profiled step. On a GPU the time counted is the kernels' time on the device; on the CPU, the
operators' time on the calling thread.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from .flops import macs_by_module

PHASES = ("forward", "backward", "optimizer")
_PART, _PHASE, _STEP = "part:", "phase:", "step:"
_NODE = "autograd::engine::evaluate_function"  # one backward node, run by the engine
# (pattern for the whole module name, part): the first that matches names the module's part
_PATTERNS = [
    (r"patch_embed", "stem"),
    (r"(stages|transformers)\.\d+\.(downsample|pool)", "pooling"),
    (r"(.*\.)?blocks\.\d+\.attn", "attention"),
    (r"(.*\.)?blocks\.\d+\.mlp", "MLP"),
    (r"(.*\.)?nlls\.\d+", "NLL"),
    (r"(.*\.)?blocks\.\d+", "norms, residuals"),
    (r"norm|fc_norm|head", "head"),
]


def network_parts(model: nn.Module) -> dict[str, str]:
    """{module name: part} for the modules that start a part, e.g. ``"stages.0.nlls.3": "stage 1 NLL"``.

    Works for SReT and for timm's ViT and PiT. A module inside a marked one (the attention inside a
    block) gets a range of its own, and an operator counts for the innermost range around it, so
    "norms, residuals" is what a block does outside its attention and MLP.
    """
    parts = {}
    for name, module in model.named_modules():
        if not name or isinstance(module, nn.Identity):
            continue
        part = next((p for pattern, p in _PATTERNS if re.fullmatch(pattern, name)), None)
        if part is not None:
            stage = re.match(r"(?:stages|transformers)\.(\d+)\.", name)
            parts[name] = f"stage {int(stage[1]) + 1} {part}" if stage else part
    return parts


def macs_by_part(model: nn.Module, img_size=None) -> dict[str, int]:
    """Forward MACs of one image per part of :func:`network_parts` (the rest under "other").

    A module's own MACs (its count minus its counted submodules') go to its innermost part, so the
    parts add up to :func:`sret_mini.flops.count_macs` of the whole network.
    """
    counts = {name: sum(ops.values()) for name, ops in macs_by_module(model, img_size).items()}
    parts, out = network_parts(model), Counter()
    for name, total in counts.items():
        below = [c for c in counts if c != name and c.startswith(name + "." if name else "")]
        nearest = [c for c in below if not any(c.startswith(o + ".") for o in below)]  # counted in `total`
        pieces = name.split(".") if name else []
        enclosing = [".".join(pieces[:k]) for k in range(len(pieces), 0, -1)]  # "a.b.c", "a.b", "a"
        out[next((parts[m] for m in enclosing if m in parts), "other")] += total - sum(counts[c] for c in nearest)
    return dict(out)


_KINETO_ROUTINE = re.compile(r"profiler_(start|stop)$|Completed Stage|gpuGetDeviceCount failed")


@contextlib.contextmanager
def _quiet_kineto():
    """Keep Kineto's routine lines (profile started, stopped; no GPU found) out of stderr.

    Kineto, the profiler's C++ library, writes them to the process's stderr, below Python. The
    block's stderr goes to a temporary file; every other line is passed on.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not _KINETO_ROUTINE.search(line):
                    print(line, file=sys.stderr)


@dataclass(frozen=True)
class StepProfile:
    """The time of one training step by part and phase: the least over the profiled steps.

    Whatever else the machine does only ever adds time to an operator, so the least time of each
    part over a few steps is the steadiest estimate of what the part costs; the parts' least
    times may come from different steps.

    Attributes:
        ms: {(part, phase): milliseconds per step}; phases are :data:`PHASES`; the optimizer's
            time is the part "optimizer", and time outside any part (the position embedding, the
            engine's own work) is "other".
        wall_ms: the median wall-clock time of a profiled step (profiler overhead included).
        steps: the steps profiled.
    """

    ms: dict[tuple[str, str], float]
    wall_ms: float
    steps: int

    @property
    def total_ms(self) -> float:
        return sum(self.ms.values())

    def phase_ms(self, phase: str) -> float:
        return sum(t for (_, ph), t in self.ms.items() if ph == phase)

    def by_part(self) -> dict[str, float]:
        """{part: ms of the step, all phases together} in the order the parts first ran."""
        out: dict[str, float] = {}
        for (part, _), t in self.ms.items():
            out[part] = out.get(part, 0.0) + t
        return out

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(part, forward ms, backward ms, share of the step) for a table."""

        def fmt(part, phase):
            return f"{self.ms.get((part, phase), 0.0):.1f}"

        return [(part, fmt(part, "forward"), fmt(part, "backward"), f"{t / self.total_ms:.0%}")
                for part, t in self.by_part().items() if part != "optimizer"] + [
            ("optimizer", "", "", f"{self.by_part().get('optimizer', 0.0) / self.total_ms:.0%}")]  # fmt: skip


def _marks(model: nn.Module, parts: dict[str, str]) -> list:
    """Forward hooks that open and close a `part:<name>` range around every part's module."""
    handles, open_ranges = [], []
    modules = dict(model.named_modules())

    def leave(module, args, output):
        open_ranges.pop().__exit__(None, None, None)

    for name, part in parts.items():

        def enter(module, args, part=part):
            open_ranges.append(record_function(_PART + part))
            open_ranges[-1].__enter__()

        handles += [modules[name].register_forward_pre_hook(enter), modules[name].register_forward_hook(leave)]
    return handles


def _context(event) -> tuple[str | None, set[str], object | None]:
    """(innermost part, the phases around it, the backward node around it) of a profiled event."""
    part, phases, node = None, set(), None
    while event is not None:
        if part is None and event.name.startswith(_PART):
            part = event.name.removeprefix(_PART)
        if event.name.startswith(_PHASE):
            phases.add(event.name.removeprefix(_PHASE))
        if node is None and event.name.startswith(_NODE):
            node = event
        event = event.cpu_parent
    return part, phases, node


def _tally(events, steps: int, on_gpu: bool) -> list[Counter]:
    """Microseconds per (part, phase), one Counter per profiled step."""
    events = [e for e in events if e.device_type == DeviceType.CPU]  # kernels count through their operator
    starts = sorted(e.time_range.start for e in events if e.name.startswith(_STEP))
    part_of_sequence, placed = {}, []
    for e in events:
        part, phases, node = _context(e)
        if node is None and "forward" in phases and part is not None and e.sequence_nr >= 0:
            part_of_sequence.setdefault(e.sequence_nr, part)  # the forward operator that made a node
        placed.append((e, part, phases, node))
    tallies = [Counter() for _ in range(steps)]
    for e, part, phases, node in placed:
        step = bisect.bisect_right(starts, e.time_range.start) - 1
        if step < 0 or e.name.startswith(_STEP):
            continue  # before the first step; the step's own range is the loop around the phases
        if node is not None or "backward" in phases:  # backward nodes may run on autograd's own thread
            key = (part_of_sequence.get(node.sequence_nr, "other") if node is not None else "other", "backward")
        elif "optimizer" in phases:
            key = ("optimizer", "optimizer")
        else:
            key = (part or "other", "forward")
        tallies[step][key] += e.self_device_time_total if on_gpu else e.self_cpu_time_total
    return tallies


def profile_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 optimizer: torch.optim.Optimizer | None = None, steps: int = 3, warmup: int = 1,
                 loss_fn: Callable = F.cross_entropy) -> StepProfile:  # fmt: skip
    """Profile `steps` training steps of `model` on one batch, after `warmup` unprofiled ones.

    Returns every part's least time over the profiled steps (see :class:`StepProfile`).

    A step is forward, ``loss_fn(model(images), labels)``, backward and ``optimizer.step()`` (AdamW
    at lr 1e-4 when no optimizer is given), so the weights change. The model, images and labels
    must be on one device; on a GPU the profile counts kernel time.

    Example:
        >>> import sret_mini
        >>> model = sret_mini.create_model("sret_nano")
        >>> prof = profile_step(model, torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,)), steps=1)
        >>> "stage 1 attention" in prof.by_part()
        True
    """
    on_gpu = images.device.type == "cuda"
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        with record_function(_PHASE + "forward"):
            logits = model(images)
            with record_function(_PART + "loss"):
                loss = loss_fn(logits, labels)
        with record_function(_PHASE + "backward"):
            loss.backward()
        with record_function(_PHASE + "optimizer"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)
        if on_gpu:
            torch.cuda.synchronize(images.device)

    for _ in range(warmup):
        step()
    handles, walls = _marks(model, network_parts(model)), []
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    try:
        with _quiet_kineto(), profile(activities=activities) as prof:
            for k in range(steps):
                start = time.perf_counter()
                with record_function(f"{_STEP}{k}"):
                    step()
                walls.append(time.perf_counter() - start)
    finally:
        for handle in handles:
            handle.remove()
    tallies = _tally(prof.events(), steps, on_gpu)
    keys = list(dict.fromkeys(k for tally in tallies for k in tally))  # in the order they first ran
    ms = {k: min(t[k] for t in tallies) / 1e3 for k in keys}  # the least disturbed: see StepProfile
    return StepProfile(ms=ms, wall_ms=statistics.median(walls) * 1e3, steps=steps)
