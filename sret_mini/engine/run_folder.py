"""A run folder belongs to one run: what `train(out=...)` guarantees about `config.json`,
`metrics.jsonl`, `last.pt` and `best.pt`.

* One owner. A run holds an exclusive lock on `<out>/.lock` (`fcntl.flock`) while it trains; a
  second run on the same folder is refused at once. The operating system drops the lock when the
  process ends, however it ends (even `kill -9`), so a crashed run never leaves a folder locked.
* No silent replacement. A folder that holds a run is continued only with `resume=True` and
  replaced only with `overwrite=True`; otherwise the run is refused before it writes anything.
* Consistent at any kill. At the end of an epoch the run writes `last.pt` (which holds the whole
  history) first, then `best.pt`, then `metrics.jsonl`; each write is atomic. A kill between two
  writes leaves `last.pt` ahead of the other two, and `repair` (called on resume) writes them again
  from it: `best.pt` of the last epoch has `last.pt`'s very weights.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from .checkpoint import load_file, save_atomic
from .files import write_text

#: the files of a run, in the order an epoch's end writes the last three
FILES = ("config.json", "last.pt", "best.pt", "metrics.jsonl")


class RunFolder:
    """`with RunFolder(out, resume, overwrite):` holds `out` for one run (see the module's notes)."""

    def __init__(self, path: str | os.PathLike, resume: bool = False, overwrite: bool = False):
        self.path, self.resume, self.overwrite = Path(path), resume, overwrite
        self._lock = None

    def __enter__(self) -> RunFolder:
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"--out {self.path} is a file, not a folder: give a folder for the run")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise FileExistsError(
                f"{self.path} is in use by another run ({holder}): wait for it to finish, or give another --out"
            ) from None
        self._lock.truncate(0)
        self._lock.write(f"process {os.getpid()}\n")
        self._lock.flush()
        existing = [name for name in FILES if (self.path / name).exists()]
        if existing and not self.resume:
            if not self.overwrite:
                self.__exit__()
                raise FileExistsError(
                    f"{self.path} already holds a run ({', '.join(existing)}): --resume continues it, --overwrite "
                    "replaces it, or give another --out"
                )
            for name in existing:
                (self.path / name).unlink()
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None and not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


def history_lines(history: list[dict]) -> str:
    return "".join(json.dumps(h) + "\n" for h in history)


def best_epoch(history: list[dict]) -> int | None:
    """The first epoch (1-based) with the highest test top-1: the one whose weights best.pt holds."""
    if not history:
        return None
    return max(history, key=lambda h: (h["test_top1"], -h["epoch"]))["epoch"]


def repair(out: Path, state: dict) -> list[str]:
    """Bring metrics.jsonl and best.pt up to `state` (the loaded last.pt); return what was rewritten.

    Only the last epoch's files can lag behind (see the module's notes): best.pt then holds an
    earlier epoch or none, and it is written from last.pt when the last epoch is the best one.
    """
    fixed, history = [], state["history"]
    metrics = out / "metrics.jsonl"
    if not metrics.is_file() or metrics.read_text() != history_lines(history):
        write_text(metrics, history_lines(history))
        fixed.append("metrics.jsonl")
    best = best_epoch(history)
    if best is not None and best == state["epoch"] and state["step"] == 0:
        saved = load_file(out / "best.pt") if (out / "best.pt").is_file() else {}
        if saved.get("epoch") != best:
            save_atomic(best_checkpoint(state["model"], state.get("ema"), best, history[-1]["test_top1"],
                                        state["config"]), out / "best.pt")  # fmt: skip
            fixed.append("best.pt")
    return fixed


def best_checkpoint(model: dict, ema: dict | None, epoch: int, test_top1: float, config: dict) -> dict:
    """What best.pt holds: the weights of its epoch, with the epoch, its accuracy and the run's config."""
    return dict(model=model, ema=ema, epoch=epoch, test_top1=test_top1, config=config)
