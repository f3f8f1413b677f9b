"""The `sret-mini` command (also `python -m sret_mini`).

sret-mini train [--recipe NAME] [--FIELD VALUE ...]   train a model (sret_mini.train)
sret-mini eval --checkpoint PATH [...]                 top-1, top-5, images/s of a checkpoint
sret-mini download NAME [--root DIR]                   fetch a dataset (cifar10, cifar100, imagenette)
sret-mini counts                                       parameters and MACs vs the authors' table
sret-mini models                                       the registered model names
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = ("train", "eval", "softlabels", "download", "counts", "models")


def counts() -> None:
    from .flops import official_comparison

    print("| official model | sret_mini name | size | params (ours / official) | GMACs (ours / official) | MAC diff |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in official_comparison():
        print(
            f"| {r['official_name']} | `{r['name']}` | {r['input_size']} | {r['params']:,} / {r['official_params']:,} "
            f"| {r['macs'] / 1e9:.3f} / {r['official_macs'] / 1e9:.3f} | {r['macs_rel_diff']:+.3%} |"
        )


def download(argv: list[str]) -> None:
    from .data import default_data_dir, load_dataset

    parser = argparse.ArgumentParser(prog="sret-mini download", description="Fetch a dataset into the data folder.")
    parser.add_argument("name", choices=["cifar10", "cifar100", "imagenette"])
    parser.add_argument("--root", default=None, help=f"where the files go (default {default_data_dir()})")
    parser.add_argument("--size", default="160px", choices=["160px", "320px"], help="imagenette only")
    args = parser.parse_args(argv)
    options = {"size": args.size} if args.name == "imagenette" else {}
    spec = load_dataset(args.name, root=args.root, download=True, **options)
    print(f"{spec.name}: {len(spec.train)} training and {len(spec.test)} test images, {spec.num_classes} classes")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    try:
        run(argv[0], argv[1:])
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # problems with the input (missing data, bad options, a diverging run): the message says
        # what to do, a traceback would only hide it
        print(f"sret-mini {argv[0]}: error: {error}", file=sys.stderr)
        sys.exit(1)


def run(command: str, rest: list[str]) -> None:
    if command == "train":
        from .train import main as train_main

        train_main(rest)
    elif command == "eval":
        from .evaluate import main as eval_main

        eval_main(rest)
    elif command == "softlabels":
        from .softlabels import main as softlabels_main

        softlabels_main(rest)
    elif command == "download":
        download(rest)
    elif command == "counts":
        counts()
    else:
        from .registry import list_models

        print("\n".join(list_models()))


if __name__ == "__main__":
    main()
