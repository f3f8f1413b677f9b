"""Where datasets live, and downloads that fail fast and say what to do when there is no network."""

from __future__ import annotations

import os
import socket
import urllib.error
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

TIMEOUT_S = 15


class DatasetUnavailable(FileNotFoundError):
    """A dataset is not on disk and could not be fetched; the message says where and how."""


ENV_DATA = "SRET_DATA"


def default_data_dir(start: str | os.PathLike | None = None) -> Path:
    """Where datasets and checkpoints live.

    `$SRET_DATA` if set; else the `data/` folder of the sret_mini checkout that holds `start`
    (default: the working directory) or the package itself; else `./data` (e.g. on Colab). A
    checkout is a folder with both `_config.yml` and `sret_mini/`. Nothing is created here.
    """
    if env := os.environ.get(ENV_DATA):
        return Path(env).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (*(here, *here.parents), package_root()):
        if (folder / "_config.yml").is_file() and (folder / "sret_mini").is_dir():
            return folder / "data"
    return here / "data"


def package_root() -> Path:
    """The folder holding the `sret_mini` package (the checkout, for an editable install)."""
    return Path(__file__).resolve().parents[2]


def fetch_command(name: str, root: Path, options: str = "") -> str:
    """The `sret-mini download` command line that fetches dataset `name` into `root`."""
    return f"sret-mini download {name} --root {root}{f' {options}' if options else ''}"


@contextmanager
def network_timeout(seconds: float = TIMEOUT_S):
    """Make every socket operation give up after `seconds` (urllib has no timeout of its own here)."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def fetch_or_explain(name: str, expected: Path, root: Path, fetch: Callable[[], object], size: str,
                     options: str = "") -> None:  # fmt: skip
    """Run `fetch()` (a download); on any network or integrity failure raise DatasetUnavailable."""
    try:
        with network_timeout():
            fetch()
    except (urllib.error.URLError, OSError, RuntimeError, TimeoutError) as e:
        raise DatasetUnavailable(
            f"{name} is not in {expected} and could not be downloaded ({type(e).__name__}: {e}). "
            f"On a machine with internet access run `{fetch_command(name, root, options)}` ({size}), "
            f"or copy the files to {expected}."
        ) from e


def missing(name: str, expected: Path, root: Path, size: str, options: str = "") -> DatasetUnavailable:
    """The error for a dataset that is absent while downloads are switched off."""
    return DatasetUnavailable(
        f"{name} not found: expected {expected}. Fetch it with `{fetch_command(name, root, options)}` ({size}), "
        f"or pass download=True."
    )
