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


@chapters
def test_chapter_says_what_to_expect_in_the_gpu_profile(path):
    headings = [line for c in read(path).cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    assert "## What to expect in the `gpu` profile" in headings


@chapters
def test_chapter_runs_without_errors_in_the_smoke_profile(path, monkeypatch):
    monkeypatch.setenv("SRET_PROFILE", "smoke")
    for name, value in kernel_env().items():
        monkeypatch.setenv(name, value)
    notebook = read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}}
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
