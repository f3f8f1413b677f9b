"""A run folder belongs to one run, is never replaced by accident, and is consistent at any kill."""

import json

import pytest
import torch

import sret_mini.engine.checkpoint
import sret_mini.engine.files
from sret_mini import TrainConfig, train
from sret_mini.engine.checkpoint import CHECKSUM_KEY, load_file
from sret_mini.engine.run_folder import RunFolder, best_epoch

QUICK = dict(dataset="shapes", dataset_options=dict(n_train=128, n_test=64), img_size=32, batch_size=32,
             epochs=2, progress=False)  # fmt: skip
COMPARED = ("epoch", "step", "train_loss", "test_loss", "test_top1")  # not the timings


class Killed(BaseException):
    """A kill -9 at a given write: nothing after it runs (not even except clauses that catch Exception)."""


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path):
    with RunFolder(tmp_path):  # as a run in another process holds it
        with pytest.raises(FileExistsError, match="in use by another run"):
            train(TrainConfig(**QUICK, out=str(tmp_path)))
    assert not (tmp_path / "config.json").exists()


def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path):
    first = train(TrainConfig(**dict(QUICK, epochs=1), out=str(tmp_path)))
    with pytest.raises(FileExistsError, match=r"already holds a run.*--resume.*--overwrite"):
        train(TrainConfig(**dict(QUICK, epochs=1), seed=1, out=str(tmp_path)))
    assert metrics(tmp_path)[-1]["test_loss"] == first.history[-1]["test_loss"]  # untouched
    train(TrainConfig(**dict(QUICK, epochs=1), seed=1, out=str(tmp_path), overwrite=True))
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 1


def test_out_naming_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        train(TrainConfig(**QUICK, out=str(tmp_path / "notes.txt")))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_kill_at_any_write_leaves_a_folder_that_resumes_to_the_same_run(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    reference = train(TrainConfig(**QUICK, out=str(whole)))
    real = sret_mini.engine.files.atomic_write
    writes = []

    def counting(path, write):
        writes.append(path)
        return real(path, write)

    monkeypatch.setattr(sret_mini.engine.files, "atomic_write", counting)
    monkeypatch.setattr(sret_mini.engine.checkpoint, "atomic_write", counting)
    train(TrainConfig(**QUICK, out=str(tmp_path / "count")))
    assert len(writes) >= 1 + 3 * QUICK["epochs"] - 2  # config, then last, (best), metrics per epoch

    for kill_at in range(len(writes)):
        folder, done = tmp_path / f"killed-{kill_at}", []

        def dying(path, write, kill_at=kill_at, done=done):
            if len(done) == kill_at:
                raise Killed(f"killed before writing {path}")
            done.append(path)
            return real(path, write)

        monkeypatch.setattr(sret_mini.engine.files, "atomic_write", dying)
        monkeypatch.setattr(sret_mini.engine.checkpoint, "atomic_write", dying)
        with pytest.raises(Killed):
            train(TrainConfig(**QUICK, out=str(folder)))
        monkeypatch.setattr(sret_mini.engine.files, "atomic_write", real)
        monkeypatch.setattr(sret_mini.engine.checkpoint, "atomic_write", real)
        # what the user does next: resume if there is a checkpoint, else start the run again
        resumable = (folder / "last.pt").is_file()
        again = train(TrainConfig(**QUICK, out=str(folder), resume=resumable, overwrite=not resumable))

        last, best = load_file(folder / "last.pt"), load_file(folder / "best.pt")
        assert same_weights(last["model"], reference.model.state_dict()), kill_at
        assert [{k: h[k] for k in COMPARED} for h in metrics(folder)] == [
            {k: h[k] for k in COMPARED} for h in reference.history
        ], kill_at
        assert metrics(folder) == last["history"] == again.history, kill_at
        assert best["epoch"] == best_epoch(last["history"]), kill_at
        assert same_weights(best["model"], load_file(whole / "best.pt")["model"]), kill_at


def test_a_checkpoint_carries_the_checksum_of_its_tensors(tmp_path):
    train(TrainConfig(**dict(QUICK, epochs=1), out=str(tmp_path)))
    raw = torch.load(tmp_path / "best.pt", weights_only=True)
    assert isinstance(raw[CHECKSUM_KEY], str) and CHECKSUM_KEY not in load_file(tmp_path / "best.pt")
