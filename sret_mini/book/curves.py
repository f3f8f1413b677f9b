"""Training curves from a run's history (`TrainResult.history` or its `metrics.jsonl`)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt


def read_metrics(run: str | Path) -> list[dict]:
    """The per-epoch records of a run folder (or of a metrics.jsonl file)."""
    path = Path(run)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no metrics at {path}: give a run folder made with out=... or its metrics.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _history(run) -> list[dict]:
    return run if isinstance(run, list) else read_metrics(run)


def plot_history(run, title: str | None = None):
    """Loss (train and test) and test top-1 against epochs, side by side. Returns the figure."""
    history = _history(run)
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    loss_ax.plot(epochs, [h["test_loss"] for h in history], label="test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    loss_ax.legend()
    acc_ax.plot(epochs, [h["test_top1"] for h in history], label="test")
    if "ema_test_top1" in history[0]:
        acc_ax.plot(epochs, [h["ema_test_top1"] for h in history], label="test (EMA)")
    acc_ax.plot(epochs, [h["train_top1"] for h in history], label="train", alpha=0.6)
    acc_ax.set(xlabel="epoch", ylabel="top-1 (%)", title="accuracy")
    acc_ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
