"""Training-loop images/second of a model: forward, backward and AdamW step on a batch.

    python bench/train_throughput.py                         # sret_t_cifar at 32 px on this machine
    python bench/train_throughput.py --model sret_nano --img-size 16

On the CPU it measures float32. On a GPU it measures bf16 autocast, eager and torch.compile'd
(`--no-compile` skips the latter). Prints a table and saves bench/results/train_throughput-<device>.json
with the device, library versions, command and date. Random images stand in for data, so the
figure is the model's training speed, not the data pipeline's.
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F
from common import save, timed

import sret_mini


def measure(model_name: str, img_size: int, batch: int, device, amp: bool, compiled: bool, steps: int, warmup: int):
    torch.manual_seed(0)
    model = sret_mini.create_model(model_name, num_classes=10, img_size=img_size).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if compiled else model
    x = torch.randn(batch, 3, img_size, img_size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    def step():
        with autocast:
            loss = F.cross_entropy(step_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds = timed(step, steps, warmup, device)
    return dict(model=model_name, img_size=img_size, batch=batch, precision="bf16" if amp else "fp32",
                compiled=compiled, seconds_per_step=seconds, images_per_s=batch / seconds)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sret_t_cifar")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 on CPU, 256 on GPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5 on CPU, 50 on GPU)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    batch = args.batch_size or (256 if gpu else 64)
    steps = args.steps or (50 if gpu else 5)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    settings = [(True, False), (True, True)] if gpu else [(False, False)]
    if gpu and args.no_compile:
        settings = settings[:1]
    results = [measure(args.model, args.img_size, batch, device, amp, compiled, steps, warmup)
               for amp, compiled in settings]  # fmt: skip
    for r in results:
        print(f"{r['model']} {r['img_size']}px batch {r['batch']} {r['precision']}"
              f"{' compiled' if r['compiled'] else ''}: {r['images_per_s']:.1f} images/s "
              f"({1000 * r['seconds_per_step']:.1f} ms/step)")  # fmt: skip
    print("saved", save("train_throughput", device, results))


if __name__ == "__main__":
    main()
