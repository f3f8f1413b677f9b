"""Distillation: the soft-label loss, teachers, and banks of a teacher's soft labels.

- `loss`: `KDLoss`, the authors' soft-label-only distillation loss (MEAL V2), and `soften`.
- `teachers`: `build_teacher` (a frozen teacher from a checkpoint or timm's weights), `teacher_id`.
- `softlabels`: `make_bank`, `SoftLabelBank`, `SoftLabelDataset`: a teacher run once over random
  crops, its top-k probabilities stored and replayed in training (FKD's recipe).
"""

from .loss import KDLoss, soften
from .softlabels import SoftLabelBank, SoftLabelDataset, make_bank
from .teachers import build_teacher, file_fingerprint, teacher_id

__all__ = ["KDLoss", "SoftLabelBank", "SoftLabelDataset", "build_teacher", "file_fingerprint", "make_bank", "soften",
           "teacher_id"]
