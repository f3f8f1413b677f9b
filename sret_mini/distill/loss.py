"""Knowledge distillation with soft labels only, as the SReT authors train their distilled models.

The authors' README follows MEAL V2: the student learns from the teacher's probabilities alone,

    loss = mean over the batch of  - sum_k softmax(t / T)_k * log_softmax(s / T)_k

with student logits s and teacher logits t both divided by the temperature T, no T^2 factor and
no hard-label term. `KDLoss` is exactly that; `hard_weight` adds a weighted cross-entropy with the
true labels, for comparison. The teacher runs in evaluation mode, without gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(log p / T): the distribution a teacher with these probabilities gives at temperature T."""
    if temperature == 1.0:
        return probs
    return torch.softmax(probs.clamp_min(1e-12).log() / temperature, dim=-1)


class KDLoss(nn.Module):
    """Soft-label distillation loss (the official one), plus an optional hard-label term.

    Args:
        temperature: T; student and teacher logits are both divided by it (no T^2 factor).
        hard_weight: weight of an added cross-entropy with the true labels (0: the official loss).

    `forward(student_logits, teacher_logits=None, *, teacher_probs=None, labels=None)`: give the
    teacher's logits (online distillation) or its probabilities at temperature 1 (a soft-label bank).
    Shapes: logits and probabilities (B, C), labels (B,) or soft targets (B, C).
    """

    def __init__(self, temperature: float = 1.0, hard_weight: float = 0.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature={temperature}: it must be positive (1.0 is FKD's default)")
        self.temperature, self.hard_weight = temperature, hard_weight

    def forward(self, student_logits, teacher_logits=None, *, teacher_probs=None, labels=None):
        if (teacher_logits is None) == (teacher_probs is None):
            raise ValueError("give exactly one of teacher_logits (online) and teacher_probs (a soft-label bank)")
        t = self.temperature
        target = F.softmax(teacher_logits / t, dim=-1) if teacher_logits is not None else soften(teacher_probs, t)
        loss = -(target * F.log_softmax(student_logits / t, dim=-1)).sum(dim=-1).mean()
        if self.hard_weight:
            if labels is None:
                raise ValueError("hard_weight > 0 needs the true labels")
            loss = loss + self.hard_weight * F.cross_entropy(student_logits, labels)
        return loss
