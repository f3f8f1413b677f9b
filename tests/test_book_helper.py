"""sret_mini.book: profiles, set-up, result checks, paired comparisons, timing, runs, quoted figures."""

import json
import random
import sys
from pathlib import Path

import pytest
import torch

import sret_mini
from sret_mini import book
from sret_mini.data import default_data_dir


@pytest.fixture
def profile(monkeypatch):
    """Set SRET_PROFILE for one test (None: unset)."""

    def set_profile(name):
        if name is None:
            monkeypatch.delenv(book.ENV_PROFILE, raising=False)
        else:
            monkeypatch.setenv(book.ENV_PROFILE, name)

    return set_profile


@pytest.mark.parametrize("name, expected", [("smoke", 1), ("book", 20), ("colab", 300), ("full", 9000)])
def test_pick_returns_the_value_of_the_current_profile(profile, name, expected):
    profile(name)
    assert book.pick(smoke=1, book=20, colab=300, full=9000) == expected


def test_full_takes_the_colab_value_unless_given_its_own(profile):
    profile("full")
    assert book.pick(smoke=1, book=2, colab=3) == 3


@pytest.mark.parametrize("name, hint", [("fast", "smoke, book, colab, full"), ("gpu", "now `colab`")])
def test_pick_rejects_an_unknown_profile_and_names_the_valid_ones(profile, name, hint):
    profile(name)
    with pytest.raises(ValueError, match=hint):
        book.pick(smoke=1, book=2, colab=3)


def test_an_explicit_profile_wins_over_the_environment(profile):
    profile("smoke")
    assert book.pick(smoke=1, book=2, colab=3, profile="colab") == 3


def test_without_sret_profile_the_profile_is_book_on_a_cpu_and_colab_with_cuda(profile, monkeypatch):
    profile(None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert book.current_profile() == "book"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert book.current_profile() == "colab"  # full is never chosen automatically


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
    assert env.profile == "smoke" and book.pick(smoke="s", book="b", colab="g") == "s"
    assert env.pick(smoke="s", book="b", colab="g") == "s"


def test_setup_rejects_an_unknown_profile(profile):
    profile(None)
    with pytest.raises(ValueError, match="valid profiles are smoke, book, colab, full"):
        book.setup(profile="huge", verbose=False)


def test_setup_uses_sret_data_as_the_data_folder(profile, monkeypatch, tmp_path):
    profile("smoke")
    monkeypatch.setenv("SRET_DATA", str(tmp_path / "elsewhere"))
    assert book.setup(verbose=False).data_dir == tmp_path / "elsewhere"


def test_the_data_folder_is_the_repository_data_folder_from_anywhere_inside_it(monkeypatch, tmp_path):
    monkeypatch.delenv("SRET_DATA", raising=False)
    (tmp_path / "_config.yml").write_text("title: x\n")
    (tmp_path / "sret_mini").mkdir()
    (tmp_path / "book").mkdir()
    assert default_data_dir(tmp_path / "book") == tmp_path / "data"


def test_the_data_folder_outside_a_checkout_is_data_in_the_working_directory(monkeypatch, tmp_path):
    import sret_mini.data.download as download

    monkeypatch.delenv("SRET_DATA", raising=False)
    monkeypatch.setattr(download, "package_root", lambda: tmp_path / "site-packages")  # a pip install
    assert default_data_dir(tmp_path) == tmp_path / "data"


def test_an_editable_install_keeps_its_data_in_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("SRET_DATA", raising=False)
    assert default_data_dir(tmp_path) == Path(sret_mini.__file__).parents[1] / "data"


def test_sret_data_overrides_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SRET_DATA", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"


def test_colab_is_recognised_by_its_module_or_its_environment(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not book.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-x")
    assert book.in_colab()


def test_markdown_table_renders_a_header_a_rule_and_one_line_per_row():
    table = book.markdown_table([("sret_t", 1), ("a|b", 2)], ["model", "n"])
    assert table._repr_markdown_().splitlines() == ["| model | n |", "| --- | --- |", "| sret_t | 1 |", "| a\\|b | 2 |"]


def test_markdown_table_rejects_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 cells but the header has 3"):
        book.markdown_table([(1, 2)], ["a", "b", "c"])


def test_source_shows_the_code_of_an_object_as_a_python_block():
    shown = book.source(book.pick)._repr_markdown_()
    assert shown.startswith("```python\ndef pick(") and shown.endswith("```")


def test_read_result_reads_the_results_shipped_in_the_package():
    names = book.available_results()
    assert "speed-cpu.json" in names
    shipped = Path(sret_mini.__file__).parent / "results" / "speed-cpu.json"
    assert book.read_result("speed-cpu.json") == json.loads(shipped.read_text())


def test_read_result_names_what_ships_when_a_result_is_missing():
    assert book.read_result("speed-tpu.json", missing_ok=True) is None
    with pytest.raises(FileNotFoundError, match="speed-tpu.json.*speed-cpu.json"):
        book.read_result("speed-tpu.json")


# ---------------------------------------------------------------------------------------------
# the result checks, paired comparisons, timing, quoted figures and saved runs


def test_expect_prints_a_tick_when_the_result_holds(capsys):
    assert book.expect(True, "recursion helps", profile="book") is True
    assert capsys.readouterr().out == "✓ recursion helps\n"


def test_expect_fails_the_book_profile_naming_the_claim_and_the_numbers():
    with pytest.raises(book.ClaimFailed, match="'recursion helps'.*gain -0.4"):
        book.expect(False, "recursion helps", detail="gain -0.4", profile="book")


@pytest.mark.parametrize("name", ["colab", "full"])
def test_expect_warns_visibly_in_a_readers_run(name, capsys):
    with pytest.warns(book.ClaimWarning, match="recursion helps"):
        assert book.expect(False, "recursion helps", profile=name) is False
    assert capsys.readouterr().out.startswith("⚠")


def test_expect_only_reports_in_the_smoke_profile(recwarn, capsys):
    assert book.expect(False, "recursion helps", profile="smoke") is False
    assert not recwarn and "not enforced" in capsys.readouterr().out


def test_expect_reads_the_current_profile(profile):
    profile("book")
    with pytest.raises(book.ClaimFailed):
        book.expect(torch.tensor(False), "a 0-d tensor is a truth value")


def test_paired_needs_every_seed_to_win_by_more_than_the_spread():
    seeds = [0, 1, 2]
    clear = book.paired({"a": [90.0, 91.0, 92.0], "b": [93.0, 94.5, 95.0]}, "a", "b", seeds)
    assert clear.gains == [3.0, 3.5, 3.0] and clear.wins == 3 and clear.beyond_spread()
    noisy = book.paired({"a": [90.0, 91.0, 92.0], "b": [90.5, 91.4, 92.2]}, "a", "b", seeds)
    assert noisy.wins == 3 and not noisy.beyond_spread()  # always ahead, but by less than the spread
    mixed = book.paired({"a": [90.0, 95.0, 92.0], "b": [99.0, 94.0, 99.0]}, "a", "b", seeds)
    assert mixed.wins == 2 and not mixed.beyond_spread()
    assert "better on 2/3 seeds" in mixed.verdict() and "not beyond" in mixed.verdict()


def test_paired_lower_is_better_turns_the_gain_around():
    losses = book.paired({"a": [2.0, 2.1, 2.2], "b": [1.0, 1.1, 1.2]}, "a", "b", [0, 1, 2], higher_is_better=False)
    assert losses.gains == pytest.approx([1.0, 1.0, 1.0]) and losses.beyond_spread()


def test_paired_rejects_missing_arms_and_unpaired_values():
    with pytest.raises(KeyError, match="no arm 'c'"):
        book.paired({"a": [1, 2], "b": [1, 2]}, "a", "c", [0, 1])
    with pytest.raises(ValueError, match="one value per seed"):
        book.paired({"a": [1, 2], "b": [1]}, "a", "b", [0, 1])


def test_arms_table_shows_every_seed_and_the_mean():
    table = book.arms_table({"plain": [1.0, 3.0]}, [5, 6]).text.splitlines()
    assert table[0] == "| arm | seed 5 | seed 6 | mean ± sd |" and table[2] == "| plain | 1.00 | 3.00 | 2.00 ± 1.41 |"


def trace_runs():
    """A run(arm, seed) that records the order it is called in and returns a result of its own."""
    calls = []

    def run(arm, seed):
        calls.append((arm, seed))
        return dict(arm=arm, seed=seed)

    return run, calls


def test_over_seeds_runs_each_arm_on_every_seed_arm_after_arm():
    run, calls = trace_runs()
    results = book.over_seeds(run, [2, 0], ["a", "b"])
    assert calls == [("a", 2), ("a", 0), ("b", 2), ("b", 0)]
    assert list(results) == ["a", "b"] and [r["seed"] for r in results["b"]] == [2, 0]  # what run returned


def test_over_seeds_seed_major_runs_every_arm_on_a_seed_before_the_next_seed():
    run, calls = trace_runs()
    results = book.over_seeds(run, [2, 0], ["a", "b"], seed_major=True)
    assert calls == [("a", 2), ("b", 2), ("a", 0), ("b", 0)]
    assert results == book.over_seeds(trace_runs()[0], [2, 0], ["a", "b"])  # same results, another order


def test_over_seeds_without_arms_splits_every_runs_readings_by_arm():
    results = book.over_seeds(lambda seed: {"model": seed, "average": 10 * seed}, [1, 2])
    assert results == {"model": [1, 2], "average": [10, 20]}
    assert book.arms_table(results, [1, 2]).text.count("\n") == 3  # what arms_table reads: header, rule, 2 rows


def test_time_call_reports_a_positive_median_of_many_runs():
    timing = book.time_call(torch.mm, torch.randn(32, 32), torch.randn(32, 32), min_run_time=0.05)
    assert timing.median_ms > 0 and timing.runs >= 2 and "ms" in str(timing)


def test_every_quoted_figure_says_what_it_measures_and_where_it_comes_from():
    figures = book.quoted_figures()
    assert len(figures) >= 20
    for q in figures.values():
        assert q.measures and q.unit and q.source, q.key
        assert "reference" not in q.source.lower() and ".md" not in q.source.replace("README.md", ""), q.key
    assert book.quoted("deit_ti.in1k.top1").value == 72.2


def test_an_unknown_quoted_figure_lists_its_neighbours():
    with pytest.raises(KeyError, match="deit_ti.in1k.top1"):
        book.quoted("deit_ti.in1k.top5")


def test_load_or_train_trains_once_then_only_loads(tmp_path):
    from sret_mini import TrainConfig

    cfg = TrainConfig(epochs=1, batch_size=64, progress=False, device="cpu")
    first = book.load_or_train(cfg, "nano", tmp_path)
    assert first.out.parent == tmp_path / "runs" and first.out.name.startswith("nano-")
    mtime = (first.out / "last.pt").stat().st_mtime_ns
    again = book.load_or_train(cfg, "nano", tmp_path)
    assert again.history == first.history and (first.out / "last.pt").stat().st_mtime_ns == mtime
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    other = book.run_folder(TrainConfig(epochs=2), "nano", tmp_path)
    assert other != first.out  # another configuration, another folder: no run is replaced


def test_sret_sizes_sizes_every_profile_as_smoke_and_only_reports_checks(profile, monkeypatch, capsys):
    profile("colab")
    monkeypatch.setenv(book.ENV_SIZES, "smoke")
    assert book.pick(smoke=1, book=2, colab=3) == 1
    assert book.setup(verbose=False).profile == "colab"  # the code still follows the colab path
    assert book.expect(False, "a tiny run shows nothing", profile="book") is False
    assert "not enforced" in capsys.readouterr().out
