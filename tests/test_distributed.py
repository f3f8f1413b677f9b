"""DistributedDataParallel through torchrun: two CPU processes (gloo) train like one process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
from torch.distributed.distributed_c10d import Backend, BackendConfig

from sret_mini import TrainConfig, train
from sret_mini.engine.distributed import setup, teardown

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"


def run(out: Path, *flags: str, processes: int = 1) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launcher = [TORCHRUN, "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]
    command = [*launcher, "-m", "sret_mini", "train", *flags, "--out", str(out), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "last.pt", weights_only=True)


def test_a_plain_run_is_a_world_of_one():
    place = setup("cpu")
    assert (place.rank, place.world_size, place.enabled) == (0, 1, False)


def launch_world_of_one(monkeypatch) -> None:
    """The environment torchrun --nproc_per_node 1 gives its process."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        monkeypatch.setenv(name, value)


def test_torchrun_world_of_one_joins_a_process_group(monkeypatch):
    # the run then goes through the group and DDP, as on 8 GPUs
    launch_world_of_one(monkeypatch)
    try:
        place = setup("cpu")
        assert place.enabled and torch_dist.get_backend() == "gloo"
    finally:
        teardown()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_chosen_on_a_gpu(monkeypatch) -> str:
    """The backend setup() asks for when torchrun starts it on a machine with a GPU (none needed)."""
    chosen = []
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "set_device", lambda device: None)
        m.setattr(torch_dist, "is_initialized", lambda: False)
        m.setattr(torch_dist, "init_process_group", lambda backend=None, **kw: chosen.append(backend))
        for name, value in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500"), ("RANK", "0"),
                            ("LOCAL_RANK", "0"), ("WORLD_SIZE", "2")):  # fmt: skip
            m.setenv(name, value)
        setup("auto")
    return str(chosen[0])


def test_every_collective_of_a_training_run_suits_the_gpu_backend(monkeypatch):
    # A torchrun world of one on the CPU (a real gloo group, DDP included), whose all_reduce is
    # made as strict as the group a GPU process joins: it refuses, as NCCL does, a tensor on a
    # device that backend does not serve. A group of NCCL alone serves only CUDA tensors, and the
    # loop's per-step flags and epoch totals are CPU tensors.
    served = BackendConfig(Backend(backend_chosen_on_a_gpu(monkeypatch))).get_device_backend_map()
    real_all_reduce, reduced = torch_dist.all_reduce, []

    def strict_all_reduce(tensor, *args, **kwargs):
        if tensor.device.type not in served:
            raise RuntimeError(f"No backend type associated with device type {tensor.device.type}")
        reduced.append(tensor.device.type)
        return real_all_reduce(tensor, *args, **kwargs)

    monkeypatch.setattr(torch_dist, "all_reduce", strict_all_reduce)
    launch_world_of_one(monkeypatch)
    torch_dist.init_process_group("gloo")  # as torchrun's process would have; train() tears it down
    try:
        result = train(TrainConfig(epochs=1, device="cpu", progress=False))
    finally:
        teardown()
    assert result.history and reduced  # the run finished, and its collectives went through the group


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
