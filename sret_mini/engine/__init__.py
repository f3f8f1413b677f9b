"""The training engine: everything a run needs besides the model.

- `loop`: `train`, the loop itself (data, model, optimiser, then epoch after epoch), `Run`, `TrainResult`.
- `train_config`: `TrainConfig`, the one object that says what a run computes, and the named recipes.
- `run_folder`: the run folder (`--out`): one run at a time, never replaced by accident, repaired on resume.
- `checkpoint`: checkpoint files: a checked reader (`weights_only=True`, a checksum), atomic writes.
- `files`: atomic writes and tensor checksums, the two primitives the others share.
- `seeding`: one seed for Python, NumPy and torch; generator states for bit-exact resumes.
- `distributed`: the device and the collectives of a `torchrun` run (one process a GPU).
- `precision`: mixed precision (bfloat16, float16 with loss scaling).
- `evaluate`: top-1, top-5, loss and throughput, summed over processes.

This package imports nothing at import time, so that the model's modules can use its checkpoint
reader without importing the loop: `from sret_mini.engine.loop import train` (or `sret_mini.train`).
"""
