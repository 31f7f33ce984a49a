"""TinyBERT's prediction-layer distillation loss (Jiao et al., 2020, eq. 10) as stateless functions: soft
cross-entropy between the student's and the teacher's logits at temperature T, with an optional share of the
gold-label loss; MSE for regression. Each task type's ``distill_loss`` builds on them (a classifier's logits,
QA's start/end logits, token logits), so they sit beside the task types; the layer-matching losses (eqs. 7-9)
stay in ``leanbert.distill.losses``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float = 1.0) -> torch.Tensor:
    """-sum_c softmax(z_T / T)_c log softmax(z_S / T)_c, averaged over examples (eq. 10); logits (B, C).

    The reference code averages over classes too (a factor 1/C) and, like the paper, has no T^2 factor."""
    return _soft_cross_entropy_rows(student_logits, teacher_logits, temperature).mean()


def _soft_cross_entropy_rows(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                             temperature: float) -> torch.Tensor:
    """(B,) the soft cross-entropy of each row."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    targets = F.softmax(teacher_logits / temperature, dim=-1)  # (B, C)
    log_probs = F.log_softmax(student_logits / temperature, dim=-1)  # (B, C)
    return -(targets * log_probs).sum(dim=-1)


def gold_label_mask(labels: torch.Tensor, regression: bool = False) -> torch.Tensor:
    """(B,) bool: which rows carry a gold label. Unlabeled rows (``distill --unlabeled``) hold a negative
    class index (IGNORE_INDEX) or, for regression, NaN."""
    return ~torch.isnan(labels.reshape(-1)) if regression else labels.reshape(-1) >= 0


def prediction_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    labels: torch.Tensor | None = None, temperature: float = 1.0,
                    hard_label_weight: float = 0.0, regression: bool = False) -> torch.Tensor:
    """Prediction-layer loss, the mean over rows of (1 - w_i) * soft_i + w_i * hard_i, where
    w_i = ``hard_label_weight`` (in [0, 1]) on rows with a gold label and 0 on unlabeled rows
    (``gold_label_mask``): the teacher's soft targets everywhere, the gold labels only where they exist.
    With every row labelled this is (1 - w) * soft + w * hard.

    Classification: soft = ``soft_cross_entropy`` at ``temperature``; hard = cross-entropy with ``labels``
    (B,) int. Regression (logits (B, 1) or (B,)): soft = MSE to the teacher's output, hard = MSE to ``labels``
    (B,) float (the reference's STS-B recipe is w = 1)."""
    if not 0.0 <= hard_label_weight <= 1.0:
        raise ValueError(f"hard_label_weight must be in [0, 1], got {hard_label_weight}")
    if hard_label_weight > 0 and labels is None:
        raise ValueError("hard_label_weight > 0 needs the gold labels")
    if regression:
        student = student_logits.reshape(-1)  # (B,)
        soft = (student - teacher_logits.reshape(-1).to(student.dtype)) ** 2  # (B,)
    else:
        soft = _soft_cross_entropy_rows(student_logits, teacher_logits, temperature)  # (B,)
    if hard_label_weight == 0:
        return soft.mean()
    gold = gold_label_mask(labels, regression)  # (B,)
    if regression:
        target = torch.where(gold, labels.reshape(-1).to(student.dtype), student.detach())  # (B,)
        hard = (student - target) ** 2
    else:
        safe = torch.where(gold, labels.reshape(-1), torch.zeros_like(labels.reshape(-1)))  # (B,)
        hard = F.cross_entropy(student_logits, safe, reduction="none")  # (B,)
    weight = gold.to(soft.dtype) * hard_label_weight  # (B,)
    return ((1.0 - weight) * soft + weight * hard).mean()
