"""Training runs a chapter can lose and get back: load the run if it is saved, else train it.

On Colab a session can disconnect in the middle of a long run. :func:`load_or_train` keeps each
run in a folder of its own under the data folder (``SRET_DATA``, e.g. a mounted Google Drive),
named after the run and a hash of its configuration. Running the cell again finishes a run that
was cut short (``resume=True``) or, when the run is complete, only reloads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

from ..engine.checkpoint import load_file
from ..engine.loop import TrainResult, train
from ..engine.train_config import RUN_NEUTRAL, TrainConfig


def run_folder(cfg: TrainConfig, name: str, data_dir: str | Path) -> Path:
    """Where `load_or_train` keeps the run: ``<data_dir>/runs/<name>-<hash of the configuration>``."""
    fields = {k: v for k, v in asdict(cfg).items() if k not in RUN_NEUTRAL}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(data_dir) / "runs" / f"{name}-{digest}"


def load_or_train(cfg: TrainConfig, name: str, data_dir: str | Path, **train_kwargs) -> TrainResult:
    """Train `cfg` in its own run folder, continuing a saved run instead of starting again.

    A complete run is only loaded (no epoch is trained again); a run cut short resumes from its
    last checkpoint; a configuration never seen gets a new folder, so no run is ever replaced.
    `train_kwargs` go to :func:`sret_mini.engine.loop.train` (e.g. ``step_hook``).
    """
    out = run_folder(cfg, name, data_dir)
    saved = (out / "last.pt").is_file()
    return train(replace(cfg, out=str(out), resume=saved, overwrite=False), **train_kwargs)


def offline_teacher(data_dir: str | Path, model: str = "resnet18", dataset: str = "digits", epochs: int = 30,
                    **overrides) -> Path:  # fmt: skip
    """A teacher for the offline data: trained once with sret_mini's engine, then only loaded.

    No hub model was trained on the digits, so the distillation chapter and benchmark train their
    own teacher (a timm ResNet-18 by default) through :func:`load_or_train`: the run lives in
    ``<data_dir>/runs/teacher-<model>-<dataset>-<hash>``, and other settings get a run of their own.
    Prints which it did. Returns the path of the final checkpoint (``last.pt``: the weights after
    the last epoch; ``best.pt`` is chosen by test accuracy, which a teacher must not be).
    """
    cfg = TrainConfig(model=model, dataset=dataset, epochs=epochs, progress=False, data_dir=str(data_dir),
                      **overrides)  # fmt: skip
    name = f"teacher-{model}-{dataset}"
    final = run_folder(cfg, name, data_dir) / "last.pt"
    done = final.is_file() and load_file(final)["epoch"] == epochs
    load_or_train(cfg, name, data_dir)
    print(f"teacher: {'loaded' if done else 'trained'} {final}")
    return final
