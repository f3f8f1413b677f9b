"""Measuring very deep shared networks: parameters by part, gradients per application, steps.

The extreme-depth chapter asks three things of `sret_deep100` and `sret_deep1000`, and these
helpers answer them without cluttering the page:

* :func:`parameter_parts`: where the parameters are (shared blocks, NLLs, the rest);
* :func:`stream_gradient_norms`: how large the gradient of the loss is at the residual stream
  after every block application, from the first to the last;
* :class:`StepLog`: a ``step_hook`` for :func:`sret_mini.engine.loop.train` that records every step's
  loss and gradient norm;
* :func:`timed_step`: one training step (forward, backward), its time and its gradients.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..flops import count_params


def parameter_parts(model: torch.nn.Module) -> dict[str, int]:
    """Parameters of an SReT by part: ``blocks`` (shared), ``nlls``, ``rest`` and ``total``.

    Works on a model built on the ``meta`` device (shapes only, no storage).
    """
    blocks = sum(count_params(stage.blocks) for stage in model.stages)
    nlls = sum(count_params(stage.nlls) for stage in model.stages)
    total = count_params(model)
    return dict(blocks=blocks, nlls=nlls, rest=total - blocks - nlls, total=total)


def stream_gradient_norms(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Norm of d(loss)/d(tokens) after every block application, in the order the applications run.

    Every application ends with its NLL (one NLL may serve several applications), so a forward
    hook on each NLL sees each application's output once; a tensor hook on that output records
    the gradient the backward pass brings to it. Run it without gradient checkpointing (the
    recomputation would call the hooks twice). The model's parameter gradients are left set.
    """
    norms: dict[int, float] = {}
    applications = [0]  # how many have run so far

    def record(module, args, out):
        index = applications[0]
        applications[0] += 1

        def keep(grad):
            norms[index] = grad.norm().item()

        out.register_hook(keep)

    handles = [nll.register_forward_hook(record) for stage in model.stages for nll in stage.nlls]
    try:
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    return [norms[i] for i in range(applications[0])]


class StepLog:
    """A ``step_hook`` for :func:`sret_mini.engine.loop.train`: every step's loss and gradient norm.

    Example:
        >>> log = StepLog()
        >>> result = train(TrainConfig(stop_after_steps=3, progress=False), step_hook=log)  # doctest: +SKIP
        >>> len(log.loss), len(log.grad_norm)  # doctest: +SKIP
        (3, 3)
    """

    def __init__(self):
        self.loss: list[float] = []
        self.grad_norm: list[float] = []

    def __call__(self, run, loss: torch.Tensor) -> None:
        # called after the optimizer step; the step's gradients are still in .grad
        grads = [p.grad for p in run.model.parameters() if p.grad is not None]
        self.loss.append(loss.item())
        self.grad_norm.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    def mean_loss(self, first: bool, steps: int = 5) -> float:
        """The mean loss of the first (or last) `steps` steps."""
        chosen = self.loss[:steps] if first else self.loss[-steps:]
        return sum(chosen) / len(chosen)


def timed_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, checkpointing: bool,
               seed: int = 0) -> tuple[float, list[torch.Tensor]]:  # fmt: skip
    """One forward and backward pass, with or without gradient checkpointing: (seconds, gradients).

    The seconds are the process's CPU time on a CPU (what the step computes, whatever else the
    machine runs) and the wall-clock time on a GPU. `seed` fixes drop path and the token
    permutations, so two calls with the same seed compute the same step.
    """
    model.train()
    model.set_grad_checkpointing(checkpointing)
    model.zero_grad(set_to_none=True)
    cuda = images.device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    torch.manual_seed(seed)
    if cuda:
        torch.cuda.synchronize(images.device)
    tic = clock()
    F.cross_entropy(model(images), labels).backward()
    if cuda:
        torch.cuda.synchronize(images.device)
    seconds = clock() - tic
    model.set_grad_checkpointing(False)
    return seconds, [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
