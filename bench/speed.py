"""Training and inference speed and peak memory of SReT beside DeiT-Tiny and PiT-Ti, in one run.

    python bench/speed.py                     # every model, on this machine's device
    python bench/speed.py --models sret_t deit_tiny_patch16_224 --train-batch 64
    python bench/speed.py --warm-compile-cache  # GPU: compile everything in parallel first (faster)

CPU: float32, eager. GPU: bf16 autocast, eager and torch.compile'd. Every measurement runs in a
fresh process so that its memory peak is its own (on the CPU, speed and memory in two separate
processes, because tracking memory slows the allocator down). Training memory is the peak during one training
step minus what was allocated before it (weights, gradients and optimizer state excluded: the
activation memory): on a GPU from torch's allocator, on the CPU from the process's peak resident memory.
Random images stand in for data. Saves bench/results/speed-<device>.json and prints the issue's
goal ratios: SReT-T vs DeiT-Tiny (training throughput, training memory) and the wall-clock saving
of slicing (sret_t vs sret_t_noslice) beside its MAC saving.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from common import run_isolated, save, step_peak_memory, timed

import sret_mini

MODELS = {"sret_t": 224, "sret_t_noslice": 224, "deit_tiny_patch16_224": 224, "pit_ti_224": 224, "sret_t_cifar": 32}
# The authors' no-slice T trains without drop path, their sliced T with 0.1: give the pair the same
# rate, so that they differ only in slicing.
KWARGS = {"sret_t_noslice": dict(drop_path_rate=0.1)}


def measure_one(spec: dict) -> dict:
    """One (model, mode, precision, compiled) measurement, in this process."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    model = timm.create_model(spec["model"], num_classes=1000, **KWARGS.get(spec["model"], {})).to(device)
    size, batch, train = spec["img_size"], spec["batch"], spec["mode"] == "train"
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    net = torch.compile(model) if spec["compiled"] else model
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if spec["precision"] == "bf16" else contextlib.nullcontext()
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step():
        with autocast:
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)  # gradients keep their storage: the peak is activations

    def infer_step():
        with torch.inference_mode(), autocast:
            net(x)

    step = train_step if train else infer_step
    model.train(train)
    seconds = timed(step, spec["steps"], spec["warmup"], device)
    if spec["measure"] == "time":
        return dict(spec, images_per_s=batch / seconds, seconds_per_step=seconds)
    # peak memory of one more step, after the warm-up made the optimizer state
    peak = step_peak_memory(step, device)
    return dict(spec, images_per_s=batch / seconds, seconds_per_step=seconds, peak_bytes=peak)


def warm_compile_cache(specs: list[dict]) -> None:
    """Compile every compiled measurement at once, one process each, before measuring any.

    Compiling is CPU work; one measurement after another, it takes most of a GPU run. In parallel
    it fills torch's on-disk caches (FX graph, AOT autograd, Triton kernels), so that the
    measurements that follow, one at a time as before, load their kernels instead of compiling
    them. Nothing measured changes: every step is timed after the warm-up steps.
    """
    # each process gets its share of the cores for its compile workers (not part of the cache key)
    env = dict(os.environ, TORCHINDUCTOR_COMPILE_THREADS=str(max(1, (os.cpu_count() or 1) // len(specs))))
    running = []
    for spec in specs:
        log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would stall the process
        one = json.dumps(dict(spec, measure="time", steps=1, warmup=0))
        running.append((spec, log, subprocess.Popen([sys.executable, __file__, "--one", one], env=env,
                                                    stdout=subprocess.DEVNULL, stderr=log)))  # fmt: skip
    failed = [(spec, log) for spec, log, process in running if process.wait() != 0]  # every one ends first
    if failed:
        spec, log = failed[0]
        log.seek(0)
        raise RuntimeError(f"compiling {spec} failed:\n{log.read()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="timm model names (default: all five)")
    parser.add_argument("--modes", nargs="+", choices=("train", "infer"), default=["train", "infer"],
                        help="what to measure (default: both)")  # fmt: skip
    parser.add_argument("--train-batch", type=int, default=None, help="default 16 on CPU, 128 on GPU")
    parser.add_argument("--infer-batch", type=int, default=None, help="default 32 on CPU, 256 on GPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5 on CPU, 30 on GPU)")
    parser.add_argument(
        "--warm-compile-cache",
        action="store_true",
        help="GPU: compile every compiled measurement in parallel first (see warm_compile_cache)",
    )
    parser.add_argument("--results-dir", default=None, help="where to save the JSON (default bench/results)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    settings = [("bf16", False), ("bf16", True)] if gpu else [("fp32", False)]
    batches = {"train": args.train_batch or (128 if gpu else 16), "infer": args.infer_batch or (256 if gpu else 32)}
    steps, warmup = args.steps or (30 if gpu else 5), 5 if gpu else 1
    macs = {name: sret_mini.count_macs(timm.create_model(name), MODELS.get(name, 224)) for name in args.models}
    specs = [dict(model=name, img_size=MODELS.get(name, 224), batch=batches[mode], mode=mode, precision=precision,
                  compiled=compiled, steps=steps, warmup=warmup, device=str(device))
             for name in args.models for precision, compiled in settings for mode in args.modes]  # fmt: skip
    if args.warm_compile_cache and any(spec["compiled"] for spec in specs):
        warm_compile_cache([spec for spec in specs if spec["compiled"]])
    results = []
    for spec in specs:
        if gpu:  # one process measures both
            r = run_isolated(Path(__file__), dict(spec, measure="both"), track_memory=False)
        else:
            timing = run_isolated(Path(__file__), dict(spec, measure="time"), track_memory=False)
            memory = run_isolated(Path(__file__), dict(spec, measure="memory", steps=1, warmup=1))
            r = dict(timing, peak_bytes=memory["peak_bytes"])
        r = dict(r, macs=macs[spec["model"]])
        del r["measure"]
        results.append(r)
        print(f"{r['model']:24s} {r['mode']:5s} {r['precision']}{' compiled' if r['compiled'] else '         '} "
              f"batch {r['batch']:4d}: {r['images_per_s']:9.1f} img/s  peak {r['peak_bytes'] / 2**20:8.1f} MiB",
              flush=True)  # fmt: skip

    def find(model, mode, precision, compiled):
        key = (model, mode, precision, compiled)
        return next((r for r in results if (r["model"], r["mode"], r["precision"], r["compiled"]) == key), None)

    goals = []
    for precision, compiled in settings:
        tag = f"{precision}{', compiled' if compiled else ''}"
        s, d = find("sret_t", "train", precision, compiled), find("deit_tiny_patch16_224", "train", precision, compiled)
        if s and d:
            goals.append(
                dict(
                    setting=tag,
                    goal="sret_t training throughput / DeiT-Tiny's (goal >= 1.0 on GPU bf16)",
                    value=s["images_per_s"] / d["images_per_s"],
                )
            )
            goals.append(
                dict(
                    setting=tag,
                    goal="sret_t training peak memory / DeiT-Tiny's (goal <= 2.0 on GPU bf16)",
                    value=s["peak_bytes"] / d["peak_bytes"],
                )
            )
        for mode in ("train", "infer"):
            a, b = find("sret_t", mode, precision, compiled), find("sret_t_noslice", mode, precision, compiled)
            if a and b:  # same batch: the time per step compares directly
                goals.append(dict(setting=f"{tag}, {mode}", goal="wall-clock saving of slicing (goal >= MAC saving)",
                                  value=1 - a["seconds_per_step"] / b["seconds_per_step"],
                                  mac_saving=1 - a["macs"] / b["macs"]))  # fmt: skip
    for g in goals:
        extra = f" (MAC saving {g['mac_saving']:.1%})" if "mac_saving" in g else ""
        print(f"{g['setting']:22s} {g['goal']}: {g['value']:.3f}{extra}")
    print("saved", save("speed", device, [*results, *[dict(goal=g) for g in goals]], args.results_dir))


if __name__ == "__main__":
    main()
