"""A wheel of sret_mini holds every module and data file that a clone has (what `pip install` gets)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    # built from a copy: setuptools leaves a build/ folder in the source tree
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "sret_mini", source / "sret_mini", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("sret_mini-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_holds_every_module_of_the_package(wheel_files):
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "sret_mini").rglob("*.py")}
    assert modules - wheel_files == set(), "pyproject.toml must list these (tool.setuptools.packages.find)"


def test_the_wheel_holds_the_package_data(wheel_files):
    data = {str(p.relative_to(ROOT)) for p in (ROOT / "sret_mini").rglob("*") if p.suffix in {".csv", ".txt"}}
    assert data and data - wheel_files == set(), "pyproject.toml must list these (tool.setuptools.package-data)"
