"""sret_mini.book: the profile, the seed, the device and the glued values of every chapter."""

import random
import sys
import types
from pathlib import Path

import pytest
import torch

import sret_mini
from sret_mini import book


@pytest.fixture
def profile(monkeypatch):
    """Set SRET_PROFILE for one test (None: unset)."""

    def set_profile(name):
        if name is None:
            monkeypatch.delenv(book.ENV_PROFILE, raising=False)
        else:
            monkeypatch.setenv(book.ENV_PROFILE, name)

    return set_profile


@pytest.mark.parametrize("name, expected", [("smoke", 1), ("book", 20), ("gpu", 300)])
def test_pick_returns_the_value_of_the_current_profile(profile, name, expected):
    profile(name)
    assert book.pick(smoke=1, book=20, gpu=300) == expected


def test_pick_rejects_an_unknown_profile_and_names_the_valid_ones(profile):
    profile("fast")
    with pytest.raises(ValueError, match="smoke, book, gpu"):
        book.pick(smoke=1, book=2, gpu=3)


def test_an_explicit_profile_wins_over_the_environment(profile):
    profile("smoke")
    assert book.pick(smoke=1, book=2, gpu=3, profile="gpu") == 3


def test_without_sret_profile_the_profile_is_book_on_a_cpu_and_gpu_with_cuda(profile, monkeypatch):
    profile(None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert book.current_profile() == "book"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert book.current_profile() == "gpu"


def test_setup_reads_the_profile_and_prints_one_summary_line(profile, capsys):
    profile("smoke")
    env = book.setup(seed=3)
    out = capsys.readouterr().out
    assert env.profile == "smoke" and env.seed == 3
    assert out.count("\n") == 1 and "profile smoke" in out and str(env.device) in out


def test_setup_picks_cuda_only_when_a_gpu_is_visible(profile):
    profile("smoke")
    env = book.setup(verbose=False)
    assert env.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_setup_seeds_python_numpy_and_torch(profile):
    np = pytest.importorskip("numpy")
    profile("smoke")
    book.setup(seed=7, verbose=False)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    book.setup(seed=7, verbose=False)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_setup_with_a_profile_sets_it_for_pick_too(profile):
    profile(None)
    env = book.setup(profile="smoke", verbose=False)
    assert env.profile == "smoke" and book.pick(smoke="s", book="b", gpu="g") == "s"
    assert env.pick(smoke="s", book="b", gpu="g") == "s"


def test_setup_rejects_an_unknown_profile(profile):
    profile(None)
    with pytest.raises(ValueError, match="valid profiles are smoke, book, gpu"):
        book.setup(profile="huge", verbose=False)


def test_the_data_folder_is_the_repository_data_folder_from_anywhere_inside_it(monkeypatch, tmp_path):
    monkeypatch.delenv("SRET_DATA", raising=False)
    (tmp_path / "_config.yml").write_text("title: x\n")
    (tmp_path / "sret_mini").mkdir()
    (tmp_path / "book").mkdir()
    assert book.find_data_dir(tmp_path / "book") == tmp_path / "data"


def test_the_data_folder_outside_a_checkout_is_data_in_the_working_directory(monkeypatch, tmp_path):
    import sret_mini.data.download as download

    monkeypatch.delenv("SRET_DATA", raising=False)
    monkeypatch.setattr(download, "package_root", lambda: tmp_path / "site-packages")  # a pip install
    assert book.find_data_dir(tmp_path) == tmp_path / "data"


def test_an_editable_install_keeps_its_data_in_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("SRET_DATA", raising=False)
    assert book.find_data_dir(tmp_path) == Path(sret_mini.__file__).parents[1] / "data"


def test_sret_data_overrides_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SRET_DATA", str(tmp_path / "elsewhere"))
    assert book.find_data_dir() == tmp_path / "elsewhere"


def test_colab_is_recognised_by_its_module_or_its_environment(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not book.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-x")
    assert book.in_colab()


def test_glue_records_the_value_for_myst_nb_and_shows_nothing(monkeypatch):
    recorded = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: recorded.update({name: (value, display)})
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    assert book.glue("params", 4755979) is None
    assert recorded == {"params": (4755979, False)}


def test_glue_without_myst_nb_prints_the_value_instead(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # makes `import myst_nb` fail, as on Colab
    book.glue("macs", "1.11 G")
    assert capsys.readouterr().out == "macs = 1.11 G\n"


def test_markdown_table_renders_a_header_a_rule_and_one_line_per_row():
    table = book.markdown_table([("sret_t", 1), ("a|b", 2)], ["model", "n"])
    assert table._repr_markdown_().splitlines() == ["| model | n |", "| --- | --- |", "| sret_t | 1 |", "| a\\|b | 2 |"]


def test_markdown_table_rejects_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 cells but the header has 3"):
        book.markdown_table([(1, 2)], ["a", "b", "c"])


def test_source_shows_the_code_of_an_object_as_a_python_block():
    shown = book.source(book.pick)._repr_markdown_()
    assert shown.startswith("```python\ndef pick(") and shown.endswith("```")


def test_read_result_reads_the_checkouts_benchmark_files_and_says_which_is_missing(tmp_path):
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "speed-cpu.json").write_text('{"device": "a CPU", "results": []}')
    inside = tmp_path / "book"
    inside.mkdir()
    assert book.read_result("speed-cpu.json", start=inside) == {"device": "a CPU", "results": []}
    assert book.read_result("speed-cuda.json", missing_ok=True, start=inside) is None
    with pytest.raises(FileNotFoundError, match="speed-cuda.json"):
        book.read_result("speed-cuda.json", start=inside)


def test_read_result_downloads_from_the_books_repository():
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "_config.yml").read_text())
    owner_repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    branch = config["repository"].get("branch", "main")
    assert book.RESULTS_URL == f"https://raw.githubusercontent.com/{owner_repo}/{branch}/bench/results"
