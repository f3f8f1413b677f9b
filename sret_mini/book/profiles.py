"""The four profiles that size every experiment of the book, and a chapter's set-up call.

* ``smoke``: seconds per chapter; the test suite runs every chapter this way, and the result
  checks of :func:`sret_mini.book.expect` are reported, not enforced;
* ``book``: a few minutes per chapter on a laptop CPU (``make book``); the result checks fail the
  build when an experiment stops supporting its sentence;
* ``colab``: chosen automatically when a GPU is visible; each chapter sized for about 15 minutes
  on a free Colab T4, long runs saved under the data folder so a disconnect costs minutes;
* ``full``: the paper's scale; never chosen automatically (``SRET_PROFILE=full``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.download import default_data_dir
from ..engine.distributed import pick_device
from ..engine.seeding import seed_everything

#: The profiles, from the quickest to the paper's scale.
PROFILES = ("smoke", "book", "colab", "full")
#: What each profile is for (the introduction shows this table).
PROFILE_HELP = {
    "smoke": "seconds per chapter on a CPU; what the test suite runs (result checks reported, not enforced)",
    "book": "a few minutes per chapter on a 2-core CPU; what the rendered book shows (result checks enforced)",
    "colab": "chosen when a GPU is visible: at most about 15 minutes per chapter on a free Colab T4",
    "full": "the paper's scale, for a GPU machine and hours or days; only when SRET_PROFILE=full",
}
#: The environment variable that names the profile.
ENV_PROFILE = "SRET_PROFILE"
#: For the tests: size every experiment as this profile does (``smoke``) while the code follows the
#: profile's own path (``SRET_PROFILE=colab SRET_SIZES=smoke`` runs the Colab path at tiny sizes).
ENV_SIZES = "SRET_SIZES"


def _check(name: str, where: str) -> str:
    if name not in PROFILES:
        hint = " (the former `gpu` profile is now `colab`; `full` is the paper's scale)" if name == "gpu" else ""
        raise ValueError(f"{where}={name!r} is not a profile; valid profiles are {', '.join(PROFILES)}{hint}")
    return name


def current_profile() -> str:
    """The profile named by ``SRET_PROFILE``; if unset, ``colab`` with a CUDA GPU, else ``book``.

    Raises:
        ValueError: ``SRET_PROFILE`` holds something other than one of :data:`PROFILES`.
    """
    name = os.environ.get(ENV_PROFILE, "").strip()
    if not name:
        return "colab" if torch.cuda.is_available() else "book"
    return _check(name, ENV_PROFILE)


def sizes_profile() -> str | None:
    """The profile named by ``SRET_SIZES`` (the tests' override of every experiment's size), or None."""
    name = os.environ.get(ENV_SIZES, "").strip()
    return _check(name, ENV_SIZES) if name else None


def pick(*, smoke: Any, book: Any, colab: Any, full: Any = None, profile: str | None = None) -> Any:
    """The value given for the current profile (or for ``profile``); ``full`` defaults to ``colab``'s.

    ``SRET_SIZES``, when set, wins over both (the tests run every profile's path at smoke sizes).

    Example:
        >>> pick(smoke=1, book=20, colab=300, profile="book")
        20
        >>> pick(smoke=1, book=20, colab=300, profile="full")
        300

    Raises:
        ValueError: the profile is not one of :data:`PROFILES`.
    """
    name = sizes_profile() or (current_profile() if profile is None else _check(profile, "profile"))
    return {"smoke": smoke, "book": book, "colab": colab, "full": colab if full is None else full}[name]


def in_colab() -> bool:
    """Whether the code runs on Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


@dataclass(frozen=True)
class BookEnv:
    """The settings a chapter runs with, as returned by :func:`setup`.

    Attributes:
        profile: one of :data:`PROFILES`.
        device: ``cuda`` when a GPU is visible, else ``cpu``.
        seed: the seed given to every random-number generator.
        data_dir: where datasets and checkpoints are read from and downloaded to (``SRET_DATA``).
        is_colab: whether the chapter runs on Google Colab.
    """

    profile: str
    device: torch.device
    seed: int
    data_dir: Path
    is_colab: bool

    def pick(self, *, smoke: Any, book: Any, colab: Any, full: Any = None) -> Any:
        """The value given for this environment's profile (see :func:`pick`)."""
        return pick(smoke=smoke, book=book, colab=colab, full=full, profile=self.profile)

    def summary(self) -> str:
        """One line: package version, profile, device, seed and data folder."""
        from .. import __version__

        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        else:
            device += f" ({torch.get_num_threads()} threads)"
        where = "Colab" if self.is_colab else "local"
        return (f"sret_mini {__version__} | profile {self.profile} | device {device} | seed {self.seed} | "
                f"data {self.data_dir} | {where}")  # fmt: skip


def setup(seed: int = 0, profile: str | None = None, verbose: bool = True) -> BookEnv:
    """Prepare a chapter: read the profile, seed everything, pick the device.

    Args:
        seed: seed for Python's, NumPy's and torch's random-number generators.
        profile: overrides ``SRET_PROFILE`` (one of :data:`PROFILES`); also sets the variable, so
            :func:`pick` and :func:`sret_mini.book.expect` agree with the returned environment.
        verbose: print the one-line summary.

    Raises:
        ValueError: the profile is not one of :data:`PROFILES`.
    """
    if profile is not None:
        os.environ[ENV_PROFILE] = _check(profile, "profile")
    env = BookEnv(profile=current_profile(), device=pick_device(), seed=seed, data_dir=default_data_dir(),
                  is_colab=in_colab())  # fmt: skip
    seed_everything(seed)
    if verbose:
        print(env.summary())
    return env
