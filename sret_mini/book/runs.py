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

from ..train import TrainResult, train
from ..trainconfig import TrainConfig

#: fields of TrainConfig that say where and how a run is kept, not what it computes
_PLACE = ("out", "resume", "overwrite", "progress", "data_dir", "download")


def run_folder(cfg: TrainConfig, name: str, data_dir: str | Path) -> Path:
    """Where `load_or_train` keeps the run: ``<data_dir>/runs/<name>-<hash of the configuration>``."""
    fields = {k: v for k, v in asdict(cfg).items() if k not in _PLACE}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(data_dir) / "runs" / f"{name}-{digest}"


def load_or_train(cfg: TrainConfig, name: str, data_dir: str | Path, **train_kwargs) -> TrainResult:
    """Train `cfg` in its own run folder, continuing a saved run instead of starting again.

    A complete run is only loaded (no epoch is trained again); a run cut short resumes from its
    last checkpoint; a configuration never seen gets a new folder, so no run is ever replaced.
    `train_kwargs` go to :func:`sret_mini.train.train` (e.g. ``step_hook``).
    """
    out = run_folder(cfg, name, data_dir)
    saved = (out / "last.pt").is_file()
    return train(replace(cfg, out=str(out), resume=saved, overwrite=False), **train_kwargs)
