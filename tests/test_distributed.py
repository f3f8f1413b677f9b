"""DistributedDataParallel through torchrun: two CPU processes (gloo) train like one process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sret_mini.distributed import setup

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"


def run(out: Path, *flags: str, processes: int = 1) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launcher = [TORCHRUN, "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]
    command = [*launcher, "-m", "sret_mini.train", *flags, "--out", str(out), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "last.pt", weights_only=True)


def test_a_plain_run_is_a_world_of_one():
    place = setup("cpu")
    assert (place.rank, place.world_size, place.enabled) == (0, 1, False)


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    # a model without BatchNorm: the only differences left are float rounding in the all-reduce
    flags = ["--model", "vit_tiny_patch16_224", "--model-kwargs", json.dumps(dict(img_size=16, patch_size=4, depth=2)),
             "--batch-size", "32", "--stop-after-steps", "8", "--drop-path", "0.0"]  # fmt: skip
    one = run(tmp_path / "one", *flags)
    two = run(tmp_path / "two", *flags, processes=2)
    assert two["num_updates"] == one["num_updates"] == 8
    assert len(two["rng"]) == 2  # each rank's generators are saved for resuming
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_sret_trains_alike_on_two_processes(tmp_path):
    # SReT's stem has BatchNorm, whose statistics each process takes over its half of the batch
    # (SyncBatchNorm needs GPUs): the runs agree closely, not exactly
    flags = ["--batch-size", "32", "--epochs", "1"]
    one = run(tmp_path / "one", *flags)["history"][-1]
    two = run(tmp_path / "two", *flags, processes=2)["history"][-1]
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=0.01)
    assert abs(two["test_top1"] - one["test_top1"]) < 3
