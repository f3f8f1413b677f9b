"""bench/gpu_check.py, the one prepared check for a GPU machine: its dry run goes through every part on
the CPU, a part that fails makes the whole check fail, and its table of trainings follows the chapters'
cells (their colab-profile settings, read from the cells) and names cells that train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.py"
COMMITTED = ROOT / "bench" / "results"
FIELDS = {"device", "torch", "timm", "command", "date", "results"}

sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402


def dry_run(results: Path, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, str(SCRIPT), "--dry-run", "--results-dir", str(results), *flags]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


def summary_of(done: subprocess.CompletedProcess) -> list[str]:
    return done.stdout[done.stdout.index("== gpu_check summary") :].splitlines()


def test_the_dry_run_goes_through_every_part(tmp_path):
    committed = {p.name: p.read_bytes() for p in COMMITTED.glob("*.json")}
    done = dry_run(tmp_path)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]

    for name in ("speed", "depth_memory", "gpu_check"):
        saved = json.loads((tmp_path / f"{name}-cpu.json").read_text())
        assert FIELDS <= set(saved) and saved["results"], name
        assert "gpu_check.py" in saved["command"] if name == "gpu_check" else f"{name}.py" in saved["command"]
    parts = {r["part"]: r for r in json.loads((tmp_path / "gpu_check-cpu.json").read_text())["results"] if "part" in r}
    assert list(parts) == list(gpu_check.PARTS) and all(p["ok"] for p in parts.values())
    torchrun = parts["torchrun"]["torchrun"]
    assert torchrun["ddp"] and "gloo" in torchrun["backend"]
    assert torchrun["num_updates"] == torchrun["expected_updates"]
    assert len(parts["chapters"]["chapters"]) == len(gpu_check.chapter_table())
    assert {p.name: p.read_bytes() for p in COMMITTED.glob("*.json")} == committed  # nothing written there

    summary = summary_of(done)
    goals = [line for line in summary if line.lstrip().startswith("goal [")]
    assert any("throughput / DeiT-Tiny" in g for g in goals) and any("memory / DeiT-Tiny" in g for g in goals)
    assert any("saving of slicing" in g for g in goals) and any("checkpointing cuts" in g for g in goals)
    assert any(line.startswith("torchrun") and " ok " in line for line in summary)
    chapters = {e["chapter"] for e in gpu_check.chapter_table()}
    for chapter in chapters:
        assert any(line.strip().startswith(f"chapter {chapter}:") and "full colab profile" in line for line in summary)
    assert sum("ms/step" in line for line in summary) == len(gpu_check.chapter_table())
    assert summary[-1].endswith("failed parts: none"), "\n".join(summary)


def test_a_failing_part_fails_the_check_and_the_rest_still_runs(tmp_path):
    done = dry_run(tmp_path, "--parts", "speed", "torchrun", "--speed-models", "no_such_model")
    assert done.returncode != 0
    summary = summary_of(done)
    assert any(line.startswith("speed") and "FAILED" in line for line in summary)
    assert any(line.startswith("torchrun") and " ok " in line for line in summary)
    assert summary[-1].endswith("failed parts: speed")
    saved = json.loads((tmp_path / "gpu_check-cpu.json").read_text())
    assert [r["ok"] for r in saved["results"] if "part" in r] == [False, True]


def test_every_training_of_the_table_names_a_cell_that_trains():
    for entry in gpu_check.chapter_table():
        source = gpu_check.chapter_cell(entry["chapter"], entry["cell"])
        calls = ("train(", ".backward()", "offline_teacher(", "load_or_train(", "make_bank_for(", "profile_step(",
                 "train_arm(", "train_arms(", "lab_accuracy(")  # fmt: skip
        assert any(call in source for call in calls), (
            f"{entry['chapter']} cell {entry['cell']!r} ({entry['label']}) no longer trains: the cells moved; "
            "update the table in bench/gpu_check.py"
        )


def test_a_cells_settings_are_its_colab_values_read_without_running_it():
    first = "SEEDS = env.pick(smoke=[0], book=[0, 1], colab=[0, 1, 2])\nLR, WARMUP = 1e-3, 5\nlog = open('x')"
    last = (
        "BATCH = env.pick(smoke=2, book=8, colab=64)\n"
        "RATES = {'small': LR, 'deep': LR / 10}\n"
        "def fit(name, seed):\n"
        "    local = 1\n"
        "    return train(TrainConfig(model=name, batch_size=BATCH, epochs=env.pick(smoke=1, book=2, colab=20)))\n"
        "cfg = TrainConfig(**{'dataset': 'cifar10', 'warmup_epochs': WARMUP * BATCH / len(spec)})"
    )
    s = gpu_check.cell_settings([first, last])
    assert (s["SEEDS"], s["BATCH"], s["RATES"]) == ([0, 1, 2], 64, {"small": 1e-3, "deep": 1e-4})
    assert (s["batch_size"], s["epochs"], s["dataset"]) == (64, 20, "cifar10")  # the last cell's arguments
    for unreadable in ("log", "model", "warmup_epochs", "local", "cfg"):  # needs open, an argument, spec...
        assert unreadable not in s


def test_a_setting_that_cannot_be_read_names_its_cell_and_why():
    s = gpu_check.cell_settings(["f(lr=1e-3)\ng(lr=2e-3)\nh(epochs=len(x))"], where="chapter 99's cell")
    with pytest.raises(KeyError, match="chapter 99's cell sets it to different values: 'lr'"):
        s["lr"]
    with pytest.raises(KeyError, match="sets no value for it that can be read: 'epochs'"):
        s["epochs"]


def test_the_table_follows_a_changed_chapter(tmp_path, monkeypatch):
    book = ROOT / "book"
    for path in book.glob("*.ipynb"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    chapter = tmp_path / "03_sliced_attention.ipynb"
    text = chapter.read_text(encoding="utf-8")
    assert text.count("colab=20)") == 1
    chapter.write_text(text.replace("colab=20)", "colab=33)"), encoding="utf-8")  # its epochs
    monkeypatch.setattr(gpu_check, "BOOK", tmp_path)
    slicing = [e for e in gpu_check.chapter_table() if e["chapter"] == "03_sliced_attention"]
    assert slicing and all(e["config"]["epochs"] == 33 for e in slicing)
