"""Activation memory and step time as virtual depth grows, with and without gradient checkpointing.

    python bench/depth_memory.py              # 10, 100 and 1000 applications of 10 shared blocks
    python bench/depth_memory.py --layers 100 1000 --steps 3

The models share sret_deep100's ten blocks (3 stages, 96/192/384 channels) and apply each 1, 10
or 100 times: 10, 100 and 1000 layers. The last two are the registered sret_deep100 and
sret_deep1000; their activations grow with depth while their parameters stay at 14-15M.
Gradient checkpointing keeps only each application's input and recomputes the rest in the
backward pass. CPU: 64 px images, batch 8, float32; GPU: 224 px, batch 32, bf16. Each
measurement runs in a fresh process: the time per step in one, the peak memory in another (on
the CPU, tracking memory slows the allocator down). Saves bench/results/depth_memory-<device>.json and prints the
issue's goal for the 1000-layer model: memory cut >= 5x for <= 40% more time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from common import run_isolated, save, step_peak_memory, timed

import sret_mini

LOOPS = (1, 10, 100)  # applications per shared block: 10, 100 and 1000 layers in all
NAMES = {1: "sret_deep100", 10: "sret_deep100", 100: "sret_deep1000"}  # loops -> the registered model it is
# the goal for the deepest model: checkpointing cuts peak activation memory at least 5x ...
MEMORY_CUT_GOAL = 5.0
TIME_INCREASE_GOAL = 0.40  # ... for at most 40% more time per step


def model_for(loops: int, img_size: int):
    overrides = dict(loops=1) if loops == 1 else {}
    return sret_mini.create_model(NAMES[loops], num_classes=10, img_size=img_size, **overrides)


def measure_one(spec: dict) -> dict:
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    model = model_for(spec["loops"], spec["img_size"]).to(device).train()
    model.set_grad_checkpointing(spec["checkpointing"])
    x = torch.randn(spec["batch"], 3, spec["img_size"], spec["img_size"], device=device)
    y = torch.randint(0, 10, (spec["batch"],), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if spec["bf16"] else contextlib.nullcontext()

    def step():
        with autocast:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=False)  # gradients keep their storage: the peak is activations

    if spec["measure"] == "time":
        return dict(spec, seconds_per_step=timed(step, spec["steps"], 1, device))
    step()  # warm-up
    return dict(spec, peak_bytes=step_peak_memory(step, device), params=sret_mini.count_params(model),
                layers=sum(1 for _ in model.block_applications()))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 2 on CPU, 5 on GPU)")
    parser.add_argument(
        "--layers",
        type=int,
        nargs="+",
        choices=[10 * loops for loops in LOOPS],
        default=[10 * loops for loops in LOOPS],
        help="depths to measure (default: all three)",
    )
    parser.add_argument("--img-size", type=int, default=None, help="default 64 on CPU, 224 on GPU")
    parser.add_argument("--batch", type=int, default=None, help="default 8 on CPU, 32 on GPU")
    parser.add_argument("--results-dir", default=None, help="where to save the JSON (default bench/results)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    loop_counts = sorted(layers // 10 for layers in args.layers)
    results = []
    for loops in loop_counts:
        for checkpointing in (False, True):
            spec = dict(loops=loops, checkpointing=checkpointing, img_size=args.img_size or (224 if gpu else 64),
                        batch=args.batch or (32 if gpu else 8), bf16=gpu, steps=args.steps or (5 if gpu else 2),
                        device=str(device))  # fmt: skip
            memory = run_isolated(Path(__file__), dict(spec, measure="memory"), track_memory=not gpu)
            timing = run_isolated(Path(__file__), dict(spec, measure="time"), track_memory=False)
            r = dict(memory, seconds_per_step=timing["seconds_per_step"])
            del r["measure"]
            results.append(r)
            print(f"{r['layers']:5d} layers ({r['params'] / 1e6:.2f}M params) checkpointing {str(checkpointing):5s}: "
                  f"{r['seconds_per_step']:7.2f} s/step, peak activations {r['peak_bytes'] / 2**20:8.1f} MiB", flush=True)  # fmt: skip
    plain, ckpt = (
        next(r for r in results if r["loops"] == loop_counts[-1] and r["checkpointing"] == c) for c in (False, True)
    )
    cut, slower = (
        plain["peak_bytes"] / max(ckpt["peak_bytes"], 1),
        ckpt["seconds_per_step"] / plain["seconds_per_step"] - 1,
    )
    print(
        f"{plain['layers']} layers: checkpointing cuts peak activation memory {cut:.1f}x (goal >= {MEMORY_CUT_GOAL:g}x) "
        f"for {slower:+.0%} time per step (goal <= {TIME_INCREASE_GOAL:+.0%})"
    )
    goal = dict(layers=plain["layers"], memory_cut=cut, time_increase=slower, memory_cut_goal=MEMORY_CUT_GOAL,
                time_increase_goal=TIME_INCREASE_GOAL)  # fmt: skip
    print("saved", save("depth_memory", device, [*results, dict(goal=goal)], args.results_dir))


if __name__ == "__main__":
    main()
