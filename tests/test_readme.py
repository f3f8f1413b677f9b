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
