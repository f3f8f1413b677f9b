"""The README's Python examples run exactly as written (those that need no downloaded file)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
RUNNABLE = [b for b in BLOCKS if ".pth" not in b]


def test_the_readme_has_runnable_examples():
    assert len(RUNNABLE) >= 2


def test_readme_examples_run_in_order_and_print_what_they_say(capsys):
    namespace = {}
    for block in RUNNABLE:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "torch.Size([2, 10])" in out
    assert "'sret_s_noslice_512', 'sret_t_cifar'" in out and "'sret_deep1000', 'sret_nano']" in out


@pytest.mark.parametrize("command", ["make book", "make test"])
def test_readme_quickstart_names_the_make_targets(command):
    target = command.split()[1]
    assert command in README.read_text()
    assert re.search(rf"^{target}:", (README.parent / "Makefile").read_text(), flags=re.M)


def layout_paths() -> list[str]:
    """The paths the README's "Repository layout" section names, in its table's first column."""
    text = README.read_text()
    section = text[text.index("## Repository layout") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def test_readme_layout_names_every_top_level_module_and_subpackage():
    package = README.parent / "sret_mini"
    modules = {f"sret_mini/{p.name}" for p in package.glob("*.py")}
    subpackages = {f"sret_mini/{p.parent.name}/" for p in package.glob("*/__init__.py")}
    missing = (modules | subpackages) - set(layout_paths())
    assert not missing, f"the README's layout does not name {sorted(missing)}: add a row for each"


def test_readme_layout_names_nothing_that_does_not_exist():
    paths = layout_paths()
    assert len(paths) >= 20
    absent = [p for p in paths if not (README.parent / p).exists()]
    assert not absent, f"the README's layout names {absent}, which do not exist"


def test_every_drive_file_id_of_the_table_reaches_timm_and_official_files():
    import timm

    import sret_mini

    releases = {f["timm_name"]: f for f in sret_mini.registry.official_files()}
    ids = [row["drive_file_id"] for row in sret_mini.official_table()]
    assert len(releases) == len(ids) == 14 and sum(bool(i) for i in ids) == 12
    for name, release in releases.items():
        notes = timm.models.get_pretrained_cfg(name).notes
        assert (release["url"] or "not released") in notes[0] and str(release["top1"]) in notes[1]
