"""The lock pins every package `make install` needs; the package itself keeps loose bounds (Colab)."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0))


def locked() -> dict[str, str]:
    """{package: exact version} from requirements.lock."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^ ;]+)(\s*;.*)?", line)
            assert match, f"requirements.lock: {line!r} is not an exact pin (name==version)"
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def test_every_dependency_of_the_package_and_its_extras_is_locked():
    wanted = [*PYPROJECT["dependencies"], *(r for extra in PYPROJECT["optional-dependencies"].values() for r in extra)]
    missing = sorted({requirement_name(r) for r in wanted} - set(locked()))
    assert not missing, f"not in requirements.lock: {missing}; run `make lock`"


def test_the_lock_pins_torch_torchvision_timm_and_pip():
    assert {"torch", "torchvision", "timm", "pip"} <= set(locked())


def test_the_package_itself_keeps_loose_bounds_for_colab():
    # Colab brings its own torch: an exact pin in the package would replace it on every install
    exact = [r for r in PYPROJECT["dependencies"] if "==" in r]
    assert not exact, exact


def test_make_install_and_the_conda_environment_install_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-r \$\(LOCK\)", makefile) and "LOCK     := requirements.lock" in makefile
    assert "-r requirements.lock" in (ROOT / "environment.yml").read_text()
