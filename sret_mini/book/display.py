"""Showing things on the page: Markdown, tables, and the package's own source code."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any


class Markdown:
    """Markdown shown as rendered text by Jupyter, Colab and the book (myst-nb parses it as MyST)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def markdown_table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> Markdown:
    """A Markdown table of ``rows`` (one sequence of cells each) under ``header``.

    Example:
        >>> print(markdown_table([("sret_t", "4.8M")], ["model", "params"]).text)
        | model | params |
        | --- | --- |
        | sret_t | 4.8M |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        if len(cells) != len(header):
            raise ValueError(f"a row has {len(cells)} cells but the header has {len(header)}: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))


def source(obj: Any) -> Markdown:
    """The source code of a function, class or module of the package, as a highlighted code block.

    The book's stylesheet (``_static/sret.css``) sets code blocks in outputs so that the package's
    120-column lines fit the page at 1280 px without scrolling sideways.
    """
    return Markdown(f"```python\n{inspect.getsource(obj).rstrip()}\n```")
