"""bench/gpu_check.py, the one prepared check for a GPU machine: its dry run goes through every part on
the CPU, a part that fails makes the whole check fail, and its table of trainings names real cells."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
        cells = json.loads((ROOT / "book" / f"{entry['chapter']}.ipynb").read_text())["cells"]
        cell = cells[entry["cell"]]
        source = "".join(cell["source"])
        calls = ("train(", ".backward()", "offline_teacher(", "load_or_train(", "make_bank_for(", "profile_step(",
                 "train_arm(", "train_arms(", "lab_accuracy(")  # fmt: skip
        trains = any(call in source for call in calls)
        assert cell["cell_type"] == "code" and trains, (
            f"{entry['chapter']} cell {entry['cell']} ({entry['label']}) no longer trains: the cells moved; "
            "update the table in bench/gpu_check.py (and check its colab values against the chapter)"
        )
