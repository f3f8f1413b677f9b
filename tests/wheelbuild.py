"""Build sret_mini's wheel the way the tests need it: from a private copy of the source.

setuptools builds in a `build/` folder inside the source tree, so two builds of one checkout at
the same moment (two pytest-xdist workers, each with its own session fixture) collide on
`build/bdist.*/wheel/*.dist-info`. Each build here works on its own copy, so any number can run
at once, and the checkout is left as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
#: what setuptools reads to build the wheel (pyproject.toml names README.md as the long description)
SOURCE = ("pyproject.toml", "README.md", "sret_mini")


def build_wheel(out: Path) -> Path:
    """Build the wheel into the folder `out` from a fresh copy of the source; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sret-wheel-src-") as tmp:
        source = Path(tmp)
        for name in SOURCE:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / name, source / name)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
            check=True,
            capture_output=True,
        )
    (wheel,) = out.glob("sret_mini-*.whl")
    return wheel
