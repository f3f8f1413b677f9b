"""The `sret-mini` command (also `python -m sret_mini`).

sret-mini counts      parameters and MACs of every released variant beside the authors' table
sret-mini models      the registered model names
"""

from __future__ import annotations

import argparse
import sys


def _counts(args) -> None:
    from .flops import official_comparison

    print("| official model | sret_mini name | size | params (ours / official) | GMACs (ours / official) | MAC diff |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in official_comparison():
        print(
            f"| {r['official_name']} | `{r['name']}` | {r['input_size']} | {r['params']:,} / {r['official_params']:,} "
            f"| {r['macs'] / 1e9:.3f} / {r['official_macs'] / 1e9:.3f} | {r['macs_rel_diff']:+.3%} |"
        )


def _models(args) -> None:
    from .registry import list_models

    print("\n".join(list_models()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sret-mini", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("counts", help="parameters and MACs of every released variant vs the authors' table")
    commands.add_parser("models", help="list the registered model names")
    args = parser.parse_args(argv)
    {"counts": _counts, "models": _models}[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
