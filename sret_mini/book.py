"""What every chapter of the book needs before its first experiment, in one call.

A chapter's set-up cell calls :func:`setup`, which reads the *profile*, seeds every random-number
generator and picks the device; later cells size their experiments with :func:`pick`::

    from sret_mini import book
    env = book.setup()                              # prints a one-line summary
    steps = book.pick(smoke=2, book=200, gpu=5000)  # the value for the current profile

The profile comes from the ``SRET_PROFILE`` environment variable:

* ``smoke``: seconds per chapter; the test suite runs every chapter this way;
* ``book``: a few minutes per chapter on a laptop CPU, with real results (``make book``);
* ``gpu``: the full-scale runs, for Colab or a GPU machine.

When ``SRET_PROFILE`` is not set, the profile is ``gpu`` if a CUDA GPU is visible and ``book``
otherwise. Numbers that the prose of a chapter quotes are handed to the page with :func:`glue`.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .distributed import pick_device
from .seeding import seed_everything

#: The profiles, from the quickest to the full-scale runs.
PROFILES = ("smoke", "book", "gpu")
#: What each profile is for (the introduction shows this table).
PROFILE_HELP = {
    "smoke": "seconds per chapter; what the test suite runs",
    "book": "a few minutes per chapter on a CPU, real results (what the rendered book shows)",
    "gpu": "the full-scale runs, for Colab or a GPU machine",
}
#: The environment variable that names the profile.
ENV_PROFILE = "SRET_PROFILE"
#: The environment variable that overrides the data folder.


def current_profile() -> str:
    """The profile named by ``SRET_PROFILE``; if unset, ``gpu`` with a CUDA GPU, else ``book``.

    Raises:
        ValueError: ``SRET_PROFILE`` holds something other than one of :data:`PROFILES`.
    """
    name = os.environ.get(ENV_PROFILE, "").strip()
    if not name:
        return "gpu" if torch.cuda.is_available() else "book"
    if name not in PROFILES:
        raise ValueError(f"{ENV_PROFILE}={name!r} is not a profile; valid profiles are {', '.join(PROFILES)}")
    return name


def pick(*, smoke: Any, book: Any, gpu: Any, profile: str | None = None) -> Any:
    """The value given for the current profile (or for ``profile``, when given).

    Example:
        >>> pick(smoke=1, book=20, gpu=300, profile="book")
        20

    Raises:
        ValueError: the profile is not one of :data:`PROFILES`.
    """
    name = current_profile() if profile is None else profile
    values = {"smoke": smoke, "book": book, "gpu": gpu}
    if name not in values:
        raise ValueError(f"profile {name!r} is not a profile; valid profiles are {', '.join(PROFILES)}")
    return values[name]


def in_colab() -> bool:
    """Whether the code runs on Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def find_data_dir(start: str | os.PathLike | None = None) -> Path:
    """Where datasets and checkpoints live (see :func:`sret_mini.data.default_data_dir`)."""
    from .data import default_data_dir

    return default_data_dir(start)


#: Where the chapters fetch saved benchmark results when they run outside a checkout (Colab).
RESULTS_URL = "https://raw.githubusercontent.com/sret-mini/sret_mini/main/bench/results"


def read_result(name: str, missing_ok: bool = False, start: str | os.PathLike | None = None) -> dict | None:
    """A benchmark result saved by a script of bench/ (e.g. "speed-cpu.json"), as a dict.

    Read from bench/results of the checkout that holds `start` (default: the working folder), or,
    outside a checkout, downloaded from the project's repository (RESULTS_URL).

    Raises:
        FileNotFoundError: no such result (unless `missing_ok`, which returns None instead).
    """
    import urllib.error
    import urllib.request

    here = Path(start or Path.cwd()).resolve()
    folder = next((f / "bench" / "results" for f in (here, *here.parents) if (f / "bench" / "results").is_dir()), None)
    if folder is not None:
        path = folder / name
        if path.is_file():
            return json.loads(path.read_text())
        where = str(path)
    else:
        url = f"{RESULTS_URL}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except (urllib.error.URLError, TimeoutError):  # HTTPError (404) included
            where = url
    if missing_ok:
        return None
    raise FileNotFoundError(f"no benchmark result at {where}: run the script of bench/ that writes {name}")


@dataclass(frozen=True)
class BookEnv:
    """The settings a chapter runs with, as returned by :func:`setup`.

    Attributes:
        profile: ``smoke``, ``book`` or ``gpu`` (see :data:`PROFILES`).
        device: ``cuda`` when a GPU is visible, else ``cpu``.
        seed: the seed given to every random-number generator.
        data_dir: where datasets and checkpoints are read from and downloaded to.
        is_colab: whether the chapter runs on Google Colab.
    """

    profile: str
    device: torch.device
    seed: int
    data_dir: Path
    is_colab: bool

    def pick(self, *, smoke: Any, book: Any, gpu: Any) -> Any:
        """The value given for this environment's profile (see :func:`pick`)."""
        return pick(smoke=smoke, book=book, gpu=gpu, profile=self.profile)

    def summary(self) -> str:
        """One line: package version, profile, device, seed and data folder."""
        from . import __version__

        where = "Colab" if self.is_colab else "local"
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        else:
            device += f" ({torch.get_num_threads()} threads)"
        return (
            f"sret_mini {__version__} | profile {self.profile} | device {device} | seed {self.seed} | "
            f"data {self.data_dir} | {where}"
        )


def setup(seed: int = 0, profile: str | None = None, verbose: bool = True) -> BookEnv:
    """Prepare a chapter: read the profile, seed everything, pick the device.

    Args:
        seed: seed for Python's, NumPy's and torch's random-number generators.
        profile: overrides ``SRET_PROFILE`` (one of :data:`PROFILES`); also sets the variable, so
            :func:`pick` agrees with the returned environment.
        verbose: print the one-line summary.

    Returns:
        BookEnv: the profile, device, seed, data folder and whether this is Colab.

    Raises:
        ValueError: the profile is not one of :data:`PROFILES`.
    """
    if profile is not None:
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r} is not a profile; valid profiles are {', '.join(PROFILES)}")
        os.environ[ENV_PROFILE] = profile
    env = BookEnv(
        profile=current_profile(),
        device=pick_device(),
        seed=seed,
        data_dir=find_data_dir(),
        is_colab=in_colab(),
    )
    seed_everything(seed)
    if verbose:
        print(env.summary())
    return env


# ---------------------------------------------------------------------------------------------
# putting computed values on the page


def glue(name: str, value: Any, display: bool = False) -> None:
    """Hand a computed value to the page, to be quoted in the prose as ``{glue:text}`name```.

    A thin wrapper over ``myst_nb.glue``. Where myst-nb is not installed (on Colab, say) the
    value is printed as ``name = value`` instead, so a reader still sees every quoted number.
    Strings appear without quotes; format numbers in the cell (``f"{x:,}"``) or in the role
    (``{glue:text}`name:.1f```). Returns nothing, so a cell that ends with a glue shows nothing.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)


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
    """The source code of a function, class or module, shown as a highlighted code block."""
    return Markdown(f"```python\n{inspect.getsource(obj).rstrip()}\n```")
