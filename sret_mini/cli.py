"""The `sret-mini` command (also `python -m sret_mini`).

sret-mini train [--recipe NAME] [--FIELD VALUE ...]   train a model (sret_mini.train)
sret-mini eval --checkpoint PATH [...]                 top-1, top-5, images/s of a checkpoint
sret-mini softlabels --teacher NAME --out FILE [...]  store a teacher's soft labels (FKD bank)
sret-mini download NAME [--root DIR]                   fetch a dataset (cifar10, cifar100, imagenette)
sret-mini counts                                       parameters and MACs vs the authors' table
sret-mini models                                       the registered model names
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import command
from .data import default_data_dir, load_dataset
from .distill import build_teacher, teacher_id
from .distributed import pick_device
from .evaluate import main as eval_main
from .flops import official_comparison
from .registry import list_models
from .softlabels import SoftLabelBank, make_bank
from .train import main as train_main


def counts(argv: list[str]) -> None:
    print("| official model | sret_mini name | size | params (ours / official) | GMACs (ours / official) | MAC diff |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in official_comparison():
        print(
            f"| {r['official_name']} | `{r['name']}` | {r['input_size']} | {r['params']:,} / {r['official_params']:,} "
            f"| {r['macs'] / 1e9:.3f} / {r['official_macs'] / 1e9:.3f} | {r['macs_rel_diff']:+.3%} |"
        )


def download(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="sret-mini download", description="Fetch a dataset into the data folder.")
    parser.add_argument("name", choices=["cifar10", "cifar100", "imagenette"])
    parser.add_argument("--root", default=None, help=f"where the files go (default {default_data_dir()})")
    parser.add_argument("--size", default="160px", choices=["160px", "320px"], help="imagenette only")
    args = parser.parse_args(argv)
    options = {"size": args.size} if args.name == "imagenette" else {}
    spec = load_dataset(args.name, root=args.root, download=True, **options)
    print(f"{spec.name}: {len(spec.train)} training and {len(spec.test)} test images, {spec.num_classes} classes")


def softlabels(argv: list[str]) -> Path:
    """`sret-mini softlabels`: run a teacher once over random crops of a dataset and store a bank."""
    parser = argparse.ArgumentParser(prog="sret-mini softlabels", description=softlabels.__doc__)
    parser.add_argument("--teacher", required=True, help="model name (timm or sret_mini)")
    parser.add_argument("--teacher-checkpoint", help="the teacher's weights (e.g. runs/teacher/best.pt)")
    parser.add_argument("--teacher-pretrained", action="store_true", help="timm's pretrained weights (needs network)")
    parser.add_argument("--teacher-kwargs", type=json.loads, default={}, metavar="JSON")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--dataset-options", type=json.loads, default={}, metavar="JSON")
    parser.add_argument("--data-dir")
    parser.add_argument("--img-size", type=int)
    parser.add_argument("--crops", type=int, default=10, help="random crops per image (FKD's ImageNet setting: 500)")
    parser.add_argument("--topk", type=int, default=5, help="probabilities kept per crop (the rest spread evenly)")
    parser.add_argument("--crop-scale", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"))
    parser.add_argument("--hflip", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="the bank file (.safetensors)")
    args = parser.parse_args(argv)

    spec = load_dataset(args.dataset, root=args.data_dir, img_size=args.img_size, **args.dataset_options)
    device = pick_device(args.device)
    teacher = build_teacher(args.teacher, spec.num_classes, args.teacher_checkpoint, args.teacher_pretrained,
                            **args.teacher_kwargs).to(device)  # fmt: skip
    scale = tuple(args.crop_scale) if args.crop_scale else spec.augment.get("scale", (0.08, 1.0))
    hflip = args.hflip if args.hflip is not None else spec.augment.get("hflip", 0.5)
    path = make_bank(
        teacher, spec.train, args.out, dataset_name=spec.name, num_classes=spec.num_classes, img_size=spec.img_size,
        teacher_name=teacher_id(args.teacher, args.teacher_checkpoint, args.teacher_pretrained), mean=spec.mean,
        std=spec.std, crops=args.crops, topk=args.topk, scale=scale, ratio=spec.augment.get("ratio", (3 / 4, 4 / 3)),
        hflip=hflip, seed=args.seed, batch_size=args.batch_size, device=device,
    )  # fmt: skip
    bank = SoftLabelBank(path)
    print(f"{path}: {bank.info['num_images']} images x {bank.info['crops']} crops, top-{bank.info['topk']}, "
          f"{bank.nbytes() / bank.info['num_images']:.0f} bytes per image")  # fmt: skip
    return path


def models(argv: list[str]) -> None:
    print("\n".join(list_models()))


#: every subcommand: a function of the rest of the command line
COMMANDS = dict(train=train_main, eval=eval_main, softlabels=softlabels, download=download,
                counts=counts, models=models)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    command.run(f"sret-mini {argv[0]}", COMMANDS[argv[0]], argv[1:])


if __name__ == "__main__":
    main()
