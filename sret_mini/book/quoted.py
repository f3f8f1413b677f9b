"""Figures quoted from the paper and from other projects, each with what it measures and its source.

The book never types another project's number into its prose: it prints it from this table
(`quoted.csv`, shipped with the package), so every quoted figure has exactly one home and a source.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .display import Markdown, markdown_table


@dataclass(frozen=True)
class Quoted:
    """One quoted figure."""

    key: str
    value: float
    unit: str
    measures: str
    source: str

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


@cache
def quoted_figures() -> dict[str, Quoted]:
    """Every quoted figure, by key (e.g. ``"deit_ti.in1k.top1"``)."""
    text = resources.files(__package__).joinpath("quoted.csv").read_text()
    rows = csv.DictReader(text.splitlines())
    return {r["key"]: Quoted(r["key"], float(r["value"]), r["unit"], r["measures"], r["source"]) for r in rows}


def quoted(key: str) -> Quoted:
    """The quoted figure named `key`.

    Raises:
        KeyError: no such figure; the message lists the keys that start alike.
    """
    figures = quoted_figures()
    if key not in figures:
        near = [k for k in figures if k.split(".")[0] == key.split(".")[0]] or sorted(figures)[:8]
        raise KeyError(f"no quoted figure {key!r}; figures with that prefix: {near}")
    return figures[key]


def quoted_table(keys: list[str]) -> Markdown:
    """A table of the figures named `keys`: value, what it measures, source."""
    return markdown_table([(str(q), q.measures, q.source) for q in map(quoted, keys)],
                          ["value", "what it measures", "source"])  # fmt: skip
