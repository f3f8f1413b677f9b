"""A wheel of sret_mini holds every module and data file that a clone has (what `pip install` gets)."""

import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from wheelbuild import ROOT, build_wheel


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    return set(zipfile.ZipFile(build_wheel(tmp_path_factory.mktemp("wheel"))).namelist())


def test_the_wheel_holds_every_module_of_the_package(wheel_files):
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "sret_mini").rglob("*.py")}
    assert modules - wheel_files == set(), "pyproject.toml must list these (tool.setuptools.packages.find)"


def test_the_wheel_holds_the_package_data(wheel_files):
    data = {str(p.relative_to(ROOT)) for p in (ROOT / "sret_mini").rglob("*") if p.suffix in {".csv", ".txt"}}
    assert data and data - wheel_files == set(), "pyproject.toml must list these (tool.setuptools.package-data)"


def test_two_wheel_builds_at_once_both_succeed(tmp_path):
    """As two pytest-xdist workers do: each build's session fixture starts at the same moment.

    Built in the checkout itself, the second build fails on setuptools' shared `build/` folder
    ([Errno 17] File exists: 'build/bdist.../wheel/sret_mini-0.1.0.dist-info').
    """
    had_build = (ROOT / "build").exists()
    outs = [tmp_path / "a", tmp_path / "b"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        wheels = list(pool.map(build_wheel, outs))
    assert [w.parent for w in wheels] == outs
    assert sorted(zipfile.ZipFile(wheels[0]).namelist()) == sorted(zipfile.ZipFile(wheels[1]).namelist())
    assert had_build or not (ROOT / "build").exists(), "a wheel build wrote a build/ folder into the checkout"
