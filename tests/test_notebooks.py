"""Every chapter runs top to bottom in the smoke profile, and is committed in the form Colab opens.

The chapters are `book/*.ipynb`, committed without outputs and executed when the book is built.
Each test here runs one chapter in a fresh kernel with SRET_PROFILE=smoke (seconds per chapter);
the book build and the browser check are in test_book_build.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

nbformat = pytest.importorskip("nbformat", reason="make install adds nbformat (the book's test dependency)")
nbclient = pytest.importorskip("nbclient", reason="make install adds nbclient (the book's test dependency)")

ROOT = Path(__file__).parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")
ERROR_TEXT = re.compile(r"Traceback|Error|Exception|Warning")

chapters = pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])


def toc_files() -> list[str]:
    """Every file listed in _toc.yml (root, chapters, parts and sections), without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [str(Path(f).with_suffix("")) for f in files]


def read(path: Path):
    return nbformat.read(path, as_version=4)


def kernel_env() -> dict[str, str]:
    """OpenMP settings for a chapter's kernel: its share of the cores, and threads that sleep.

    OpenMP threads spin while they wait for each other; when another process holds a core (the
    other xdist worker, say) a forward pass becomes many times slower. Each kernel therefore gets
    the machine's cores divided among the workers, and waiting threads yield their core
    (OMP_WAIT_POLICY=PASSIVE, unless set already).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return {
        "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers)),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
    }


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in book/"


@chapters
def test_chapter_is_listed_in_the_table_of_contents(path):
    assert str(path.relative_to(ROOT).with_suffix("")) in toc_files(), f"add `- file: book/{path.stem}` to _toc.yml"


def test_every_page_of_the_table_of_contents_exists():
    for name in toc_files():
        assert any((ROOT / name).with_suffix(s).is_file() for s in (".ipynb", ".md")), (
            f"{name} is in _toc.yml but missing"
        )


@chapters
def test_chapter_is_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(read(path).cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} hold outputs: run `jupyter nbconvert --clear-output --inplace {path}`"


@chapters
def test_chapter_opens_with_a_colab_link_to_itself(path):
    first = read(path).cells[0]
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/{path.relative_to(ROOT)}"
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert link in first.source, f"the first cell should link to {link} (repository.url of _config.yml)"


@chapters
def test_first_code_cell_installs_sret_mini_if_missing_and_sets_up_the_chapter(path):
    code = next(c for c in read(path).cells if c.cell_type == "code").source
    assert f'"{REPOSITORY}"' in code and "git+" in code, "install from repository.url of _config.yml"
    assert 'find_spec("sret_mini") is None' in code
    assert "book.setup(" in code


# ---------------------------------------------------------------------------------------------
# the reader's bar: what every chapter is held to (book/README of the rules: the intro's last section)

MAX_CODE_LINES, MAX_CELL_LINES = 250, 40
MAKING_OF = re.compile(
    r"could not be (run|measured)|no (GPU|internet) (was|is) (available|lent)|not available (offline|here)"
    r"|the paper'?s body|shared machine|quiet machine|the issue'?s|sret_facts|anchors\.md|this session",
    re.I,
)


def code_lines(cell) -> list[str]:
    """The lines of a code cell that count: neither blank nor a comment."""
    return [line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]


def prose(path: Path) -> str:
    return "\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")


@chapters
def test_chapter_code_fits_the_budget(path):
    body = [c for c in read(path).cells if c.cell_type == "code"][1:]  # the first is the set-up cell
    total, longest = sum(len(code_lines(c)) for c in body), max((len(code_lines(c)) for c in body), default=0)
    assert total <= MAX_CODE_LINES, (
        f"{path.stem}: {total} lines of code; at most {MAX_CODE_LINES} (move helpers to sret_mini.book)"
    )
    assert longest <= MAX_CELL_LINES, f"{path.stem}: a cell of {longest} lines; at most {MAX_CELL_LINES}"


@chapters
def test_chapter_prose_reads_without_running_anything(path):
    roles = re.findall(r"\{glue(:\w+)?\}", prose(path))
    assert not roles, f"{path.stem}: {len(roles)} glue roles; write the numbers in outputs and the prose around them"


@chapters
def test_chapter_ends_with_a_summary_and_exercises(path):
    headings = [line.strip().lower() for line in prose(path).splitlines() if line.startswith("## ")]
    assert "## summary" in headings, f"{path.stem}: no `## Summary` section"
    assert "## exercises" in headings, f"{path.stem}: no `## Exercises` section"
    assert headings.index("## summary") < headings.index("## exercises")


@chapters
def test_chapter_speaks_about_sret_not_about_how_the_book_was_made(path):
    text = prose(path) + "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    found = sorted({m.group(0) for m in MAKING_OF.finditer(text)})
    assert not found, f"{path.stem} talks about its own making: {found}"


# ---------------------------------------------------------------------------------------------
# running the chapters: from the wheel outside the checkout (as on Colab), and every profile's path


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory) -> Path:
    """sret_mini built as a wheel and installed (alone, no dependencies) into a folder of its own."""
    import subprocess
    import sys

    from wheelbuild import build_wheel  # from a copy of the source: xdist workers build at the same moment

    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    wheel = build_wheel(work)
    subprocess.run([*pip, "install", "--no-deps", "--target", str(work / "site"), str(wheel)], check=True)
    return work / "site"


def run_chapter(path: Path, cwd: Path, env: dict[str, str], monkeypatch, prelude: str = "") -> nbformat.NotebookNode:
    """Execute a chapter in a fresh kernel (in `cwd`, with `env`); fail on an error or on stderr warnings.

    `prelude` is code run first (the tests' stand-ins, e.g. the fixture datasets' checksums); the
    last cell added prints where `sret_mini` was imported from.
    """
    for name, value in {**kernel_env(), **env}.items():
        monkeypatch.setenv(name, value)
    notebook = read(path)
    if prelude:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(prelude))
    notebook.cells.append(nbformat.v4.new_code_cell("import sret_mini; print(sret_mini.__file__)"))
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first error
    stderr = [
        o.text
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr" and ERROR_TEXT.search(o.text)
    ]
    assert not stderr, f"{path.name} wrote errors or warnings to stderr: {stderr}"
    return notebook


def imported_from(notebook) -> Path:
    return Path(notebook.cells[-1].outputs[0].text.strip())


@chapters
def test_chapter_runs_from_the_wheel_outside_the_checkout_in_the_smoke_profile(path, wheel_site, tmp_path, monkeypatch):
    """As on Colab: the installed package only (no checkout, no bench/ or data/ at hand)."""
    monkeypatch.delenv("SRET_DATA", raising=False)
    env = {"SRET_PROFILE": "smoke", "PYTHONPATH": str(wheel_site)}
    notebook = run_chapter(path, tmp_path, env, monkeypatch)
    assert imported_from(notebook).is_relative_to(wheel_site), "the chapter imported sret_mini from the checkout"


def fixture_data(root: Path) -> str:
    """The test datasets in their real on-disk formats under `root`; returns the prelude that accepts them."""
    from data_fixtures import write_cifar, write_imagenette

    written = {name: write_cifar(root, name, n_per_file=20) for name in ("cifar10", "cifar100")}
    write_imagenette(root)
    lines = ["from torchvision.datasets import CIFAR10, CIFAR100"]
    for name, cls in (("cifar10", "CIFAR10"), ("cifar100", "CIFAR100")):
        lines += [f"{cls}.train_list = {written[name]['train']!r}", f"{cls}.test_list = {written[name]['test']!r}",
                  f"{cls}.meta = {written[name]['meta']!r}"]  # fmt: skip
    return "\n".join(lines)


def profile_paths() -> list:
    """(chapter, profile) for the colab path of every chapter, and the full path where a chapter has one."""
    cases = []
    for path in CHAPTERS:
        code = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
        cases.append(pytest.param(path, "colab", id=f"{path.stem}-colab"))
        if re.search(r"[\"']full[\"']|full=", code):
            cases.append(pytest.param(path, "full", id=f"{path.stem}-full"))
    return cases


@pytest.mark.parametrize("path, profile", profile_paths())
def test_every_profiles_code_path_runs_at_smoke_sizes(path, profile, tmp_path, monkeypatch):
    """SRET_SIZES=smoke keeps the sizes tiny while the code follows the colab (or full) path."""
    data = tmp_path / "data"
    prelude = fixture_data(data)
    env = {"SRET_PROFILE": profile, "SRET_SIZES": "smoke", "SRET_DATA": str(data)}
    run_chapter(path, BOOK, env, monkeypatch, prelude)
