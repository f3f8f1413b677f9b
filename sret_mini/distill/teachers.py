"""Teachers: a frozen model that predicts the dataset's classes, and the name that says which one it is.

A teacher is any timm or SReT model, loaded from a checkpoint (a run of `sret_mini.train`, or a
file of its own) or from timm's pretrained weights. `teacher_id` names it by model and file
fingerprint, so that a soft-label bank records which teacher made it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from ..registry import create_model


def file_fingerprint(path: str | Path) -> str:
    """First 16 hex digits of a file's SHA-256: names a teacher checkpoint in a soft-label bank."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def teacher_id(name: str, checkpoint: str | None = None, pretrained: bool = False) -> str:
    """A string that says which teacher made a set of soft labels."""
    if checkpoint:
        return f"{name}@{file_fingerprint(checkpoint)}"
    return f"{name}@pretrained" if pretrained else f"{name}@random"


def build_teacher(name: str, num_classes: int, checkpoint: str | None = None, pretrained: bool = False,
                  **kwargs) -> nn.Module:  # fmt: skip
    """A frozen teacher in evaluation mode: any timm (or SReT) model, from a checkpoint or pretrained.

    Raises ValueError when its classes cannot be the dataset's: a teacher must predict the same
    classes as the student.
    """
    if not checkpoint and not pretrained:
        raise ValueError(
            f"teacher {name!r} has neither a checkpoint nor pretrained weights: a random teacher teaches "
            "nothing. Train one first (e.g. `sret-mini train --recipe teacher-digits --out runs/teacher`) "
            "and pass --teacher-checkpoint runs/teacher/best.pt, or use --teacher-pretrained where the "
            "machine can download weights."
        )
    if checkpoint:
        teacher = create_model(name, num_classes=num_classes, checkpoint_path=checkpoint, **kwargs)
    else:
        teacher = create_model(name, pretrained=True, **kwargs)
        classes = getattr(teacher, "num_classes", None)
        if classes != num_classes:
            raise ValueError(
                f"the pretrained teacher {name!r} predicts {classes} classes and the dataset has {num_classes}: "
                "fine-tune it on the dataset first and pass --teacher-checkpoint"
            )
    teacher.eval().requires_grad_(False)
    return teacher
