"""The `sret-mini` command (also `python -m sret_mini`, the form `torchrun -m sret_mini train` launches).

sret-mini train [--recipe NAME] [--FIELD VALUE ...]   train a model (sret_mini.train)
sret-mini eval --checkpoint PATH [...]                 top-1, top-5, images/s of a checkpoint
sret-mini softlabels --teacher NAME --out FILE [...]  store a teacher's soft labels (FKD bank)
sret-mini download NAME [--root DIR]                   fetch a dataset (cifar10, cifar100, imagenette)
sret-mini counts                                       parameters and MACs vs the authors' table
sret-mini models                                       the registered model names

How every command ends: its result, or one line that names the problem, and exit status 2. Bad
input (a missing file, an unknown dataset, an option out of range, a diverging run) raises
ValueError, FileNotFoundError, FileExistsError or RuntimeError with a message that says what to
do; a traceback would only hide it. `--debug` anywhere on the command line shows the traceback.
Ctrl-C pressed twice (the first asks training to stop after its step) exits with status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .data import EpochBatchSampler, EpochSeededDataset, default_data_dir, load_dataset, make_loader
from .distill import SoftLabelBank, build_teacher, make_bank, teacher_id
from .engine.checkpoint import extract_state_dict, load_file
from .engine.distributed import pick_device
from .engine.evaluate import evaluate
from .engine.loop import TrainResult, train
from .engine.train_config import RECIPES, TrainConfig
from .flops import official_comparison
from .registry import create_model, list_models

#: the errors whose message is the whole story for the user
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, RuntimeError)
#: the exit status of a command refused for its input (argparse's convention)
USAGE_ERROR = 2
#: the exit status of a command stopped by Ctrl-C (128 + SIGINT)
INTERRUPTED = 130


def run(prog: str, fn: Callable[[list[str]], object], argv: list[str]) -> object:
    """`fn(argv)`, with the user's errors printed as `prog: error: message` and exit status 2."""
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        return fn(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {error} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, with the shell's status for an interrupt
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)


# ---------------------------------------------------------------------------------------------
# sret-mini train: every TrainConfig field is a flag (--batch-size 128, --no-compile, --crop-scale 0.5 1)


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    flag = "--" + f.name.replace("_", "-")
    kind = str(f.type)
    if kind.startswith("bool"):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
    elif kind.startswith("dict"):
        parser.add_argument(flag, type=json.loads, default=None, metavar="JSON")
    elif kind.startswith("tuple"):
        parser.add_argument(flag, type=float, nargs=2, default=None, metavar=("LOW", "HIGH"))
    else:
        base = kind.split("|")[0].strip()
        parser.add_argument(flag, type={"int": int, "float": float}.get(base, str), default=None)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """A TrainConfig from command-line flags: the recipe's values, then the flags given."""
    parser = argparse.ArgumentParser(prog="sret-mini train", description="Train an SReT (or any timm) model.")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="digits",
                        help="named settings to start from (default: digits, the embedded default)")  # fmt: skip
    for f in dataclasses.fields(TrainConfig):
        _add_field(parser, f)
    args = vars(parser.parse_args(argv))
    values = dict(RECIPES[args.pop("recipe")])
    values.update({k: v for k, v in args.items() if v is not None})
    for key in ("crop_scale",):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return TrainConfig(**values)


def train_main(argv: list[str] | None = None) -> TrainResult:
    """`sret-mini train`: train as the recipe and the flags say, print the last epoch's figures."""
    result = train(parse_args(argv))
    if result.history and int(os.environ.get("RANK", "0")) == 0:
        last, best = result.history[-1], max(h["test_top1"] for h in result.history)
        print(f"epoch {last['epoch']}: test top-1 {last['test_top1']:.2f}% (best {best:.2f}%), "
              f"{sum(h['seconds'] for h in result.history):.0f} s in epochs"
              f"{f'; run in {result.out}' if result.out else ''}")  # fmt: skip
    if result.stopped == "ctrl-c":
        sys.exit(INTERRUPTED)
    return result


# ---------------------------------------------------------------------------------------------
# the other commands


def eval_main(argv: list[str] | None = None) -> dict:
    """`sret-mini eval`: evaluate a checkpoint (ours or the authors') and print the figures."""
    parser = argparse.ArgumentParser(prog="sret-mini eval", description=eval_main.__doc__)
    parser.add_argument("--checkpoint", required=True, help="a sret_mini run's last.pt/best.pt, or an official .pth")
    parser.add_argument("--model", help="model name (default: the run's own)")
    parser.add_argument("--dataset", help="dataset name (default: the run's own)")
    parser.add_argument("--data-dir", help="dataset folder (default: the run's own, or data/)")
    parser.add_argument("--img-size", type=int, help="input size (default: the run's own)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--ema", action="store_true", help="evaluate the EMA weights of a sret_mini run")
    args = parser.parse_args(argv)

    checkpoint = load_file(args.checkpoint)
    run = checkpoint.get("config", {}) if isinstance(checkpoint, dict) else {}
    model_name = args.model or run.get("model")
    dataset = args.dataset or run.get("dataset")
    if not model_name or not dataset:
        parser.error("this checkpoint does not record its model and dataset: give --model and --dataset")
    spec = load_dataset(dataset, root=args.data_dir or run.get("data_dir"), img_size=args.img_size or run.get("img_size"),
                        download=False, **run.get("dataset_options", {}) if not args.dataset else {})  # fmt: skip
    kwargs = dict(run.get("model_kwargs", {})) if not args.model else {}
    model = create_model(model_name, num_classes=spec.num_classes, img_size=spec.img_size, **kwargs)
    model.load_state_dict(extract_state_dict(checkpoint, use_ema=args.ema))
    device = pick_device(args.device)
    model.to(device)
    test = EpochSeededDataset(spec.test, spec.transform(train=False), random=False)
    sampler = EpochBatchSampler(len(test), args.batch_size, shuffle=False, drop_last=False)
    result = evaluate(model, make_loader(test, sampler, args.num_workers), device, args.amp, progress=True)
    print(json.dumps({"checkpoint": str(args.checkpoint), "model": model_name, "dataset": spec.name,
                      **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}}))  # fmt: skip
    return result


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
    run(f"sret-mini {argv[0]}", COMMANDS[argv[0]], argv[1:])


if __name__ == "__main__":
    main()
