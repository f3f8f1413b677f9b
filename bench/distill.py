"""Distillation on the embedded data: online teacher vs. an FKD soft-label bank vs. hard labels.

    python bench/distill.py                  # 3 seeds x 10 epochs of sret_nano on the digits (CPU)

Measures, for the same student (sret_nano) and teacher (a timm ResNet-18 trained on the digits by
`sret_mini.book.offline_teacher`, once):
  * time per epoch (training only, median over epochs and seeds) of online distillation (a teacher forward pass every step) and of replaying a
    bank (no teacher), both at one crop per image so an epoch is the same number of samples;
  * bytes per image of a bank with the full distribution (top-10 of 10 classes) and with top-3;
  * test top-1 of students trained with hard labels, online distillation, the full bank and the
    top-3 bank (mean and standard deviation over seeds).
Saves bench/results/distill-<device>.json with the device, versions, command and date.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from common import save

from sret_mini import TrainConfig, train
from sret_mini.book import offline_teacher
from sret_mini.data import default_data_dir, load_dataset
from sret_mini.distill import build_teacher, teacher_id
from sret_mini.distill.softlabels import SoftLabelBank, make_bank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--crops", type=int, default=10, help="crops per image stored in each bank")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = load_dataset("digits")
    checkpoint = offline_teacher(default_data_dir())
    teacher_name = teacher_id("resnet18", str(checkpoint))
    teacher_top1 = torch.load(checkpoint, weights_only=True)["history"][-1]["test_top1"]
    teacher = build_teacher("resnet18", spec.num_classes, str(checkpoint)).to(device)
    student = dict(dataset="digits", epochs=args.epochs, progress=False, crops_per_image=1)

    work = Path(tempfile.mkdtemp(prefix="sret-distill-"))
    banks, bank_bytes = {}, {}
    for topk in (spec.num_classes, 3):
        path = make_bank(teacher, spec.train, work / f"top{topk}.safetensors", dataset_name="digits",
                         teacher_name=teacher_name, num_classes=spec.num_classes, img_size=spec.img_size,
                         mean=spec.mean, std=spec.std, crops=args.crops, topk=topk, scale=spec.augment["scale"],
                         ratio=spec.augment["ratio"], hflip=spec.augment["hflip"], device=device, progress=False)  # fmt: skip
        banks[topk] = str(path)
        bank_bytes[topk] = SoftLabelBank(path).nbytes() / len(spec.train)

    methods = {
        "hard labels": {},
        "online teacher": dict(teacher="resnet18", teacher_checkpoint=str(checkpoint)),
        f"bank, full ({spec.num_classes} of {spec.num_classes})": dict(soft_labels=banks[spec.num_classes]),
        "bank, top-3": dict(soft_labels=banks[3]),
    }
    results = []
    for name, extra in methods.items():
        runs = [train(TrainConfig(**student, **extra, seed=seed)).history for seed in range(args.seeds)]
        top1 = [h[-1]["test_top1"] for h in runs]
        # median over epochs and seeds: the first epoch and other jobs on a shared machine inflate some
        epoch_s = [len(spec.train) / e["images_per_s"] for h in runs for e in h]
        results.append(dict(method=name, top1_mean=statistics.mean(top1),
                            top1_std=statistics.stdev(top1) if len(top1) > 1 else 0.0, top1=top1,
                            train_seconds_per_epoch=statistics.median(epoch_s), epoch_seconds=epoch_s))  # fmt: skip
        print(f"{name:28s} top-1 {results[-1]['top1_mean']:6.2f} ± {results[-1]['top1_std']:.2f}  "
              f"{results[-1]['train_seconds_per_epoch']:.2f} s/epoch (training)")  # fmt: skip
    for topk, size in bank_bytes.items():
        print(f"bank top-{topk}: {size:.0f} bytes per image ({args.crops} crops)")
    print(f"teacher resnet18: test top-1 {teacher_top1:.2f}")
    settings = dict(student="sret_nano", teacher="resnet18", teacher_top1=teacher_top1, epochs=args.epochs,
                    seeds=args.seeds, crops_per_bank_image=args.crops, crops_per_image_replayed=1,
                    bank_bytes_per_image={str(k): v for k, v in bank_bytes.items()})  # fmt: skip
    print("saved", save("distill", device, [dict(settings=settings), *results]))


if __name__ == "__main__":
    main()
