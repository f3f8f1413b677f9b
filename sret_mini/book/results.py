"""Benchmark results that ship with the package (written by the scripts of `bench/`).

Each file is `sret_mini/results/<name>-<device>.json`: the machine, the versions, the command and
the date, then the measured rows. They travel inside the wheel, so a chapter opened on Colab reads
the same figures as one built from a checkout.
"""

from __future__ import annotations

import json
from importlib import resources


def available_results() -> list[str]:
    """The names of the shipped result files (e.g. ``speed-cpu.json``)."""
    return sorted(
        p.name for p in resources.files("sret_mini").joinpath("results").iterdir() if p.name.endswith(".json")
    )


def read_result(name: str, missing_ok: bool = False) -> dict | None:
    """A shipped benchmark result (e.g. ``"speed-cpu.json"``), as a dict.

    Raises:
        FileNotFoundError: no such result (unless `missing_ok`, which returns None instead); the
            message lists the results that do ship.
    """
    path = resources.files("sret_mini").joinpath("results", name)
    if path.is_file():
        return json.loads(path.read_text())
    if missing_ok:
        return None
    raise FileNotFoundError(f"no benchmark result {name!r} ships with sret_mini; shipped: {available_results()}. "
                            "The scripts of bench/ write them (bench/README.md).")  # fmt: skip
