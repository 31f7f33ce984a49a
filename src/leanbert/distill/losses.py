"""TinyBERT's distillation losses as stateless functions (Jiao et al., 2020, "TinyBERT: Distilling BERT for
Natural Language Understanding", eqs. 7-11).

* embedding / hidden (eqs. 8-9): MSE(X_S W, X_T) over the real (non-padded) tokens only; ``W`` is a learned
  projection owned by the caller (the distillation objective), ``None`` when the widths already match.
* attention (eq. 7): (1/h) sum_i MSE(A_i^S, A_i^T) between PRE-softmax score matrices, over the (query, key)
  pairs where both positions are real tokens. The reference code instead zeroes every score <= -100 on both
  sides, which counts padded entries as (0, 0) pairs and so depends on the amount of padding; here padding
  changes nothing (tested).
* prediction (eq. 10): soft cross-entropy between the student's and teacher's logits at temperature T, with
  an optional share of the gold-label loss; MSE for regression.

Every MSE averages over the elements it compares, so a loss's scale does not depend on batch size, padding
or sequence length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from leanbert.config import ConfigError


def _real_token_mask(attention_mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, T) 1/0 mask as ``like``'s dtype, refusing a batch without a single real token."""
    mask = attention_mask.to(like.dtype)  # (B, T)
    if not bool(mask.sum() > 0):
        raise ValueError("the attention mask has no real token; nothing to distil")
    return mask


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the real tokens: student, teacher (B, T, H); attention_mask (B, T), 1 = real.

    = sum_{b,t real} ||s_bt - t_bt||^2 / (number of real tokens * H)."""
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} shapes differ; "
                         "project the student to the teacher's width first")
    mask = _real_token_mask(attention_mask, student)  # (B, T)
    squared = (student - teacher).pow(2).sum(dim=-1)  # (B, T)
    return (squared * mask).sum() / (mask.sum() * student.shape[-1])


def representation_loss(student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor,
                        projection: nn.Module | None = None) -> torch.Tensor:
    """MSE(X_S W, X_T) over real tokens (TinyBERT eqs. 8-9): ``student`` (B, T, H_S), ``teacher`` (B, T, H_T).

    ``projection`` maps H_S -> H_T (the learned W_e or W_h); pass None when H_S == H_T."""
    if projection is not None:
        student = projection(student)  # (B, T, H_T)
    elif student.shape[-1] != teacher.shape[-1]:
        raise ValueError(f"student width {student.shape[-1]} != teacher width {teacher.shape[-1]} and no "
                         "projection was given")
    return masked_mse(student, teacher, attention_mask)


def embedding_loss(student_embeddings: torch.Tensor, teacher_embeddings: torch.Tensor,
                   attention_mask: torch.Tensor, projection: nn.Module | None = None) -> torch.Tensor:
    """L_embd = MSE(E_S W_e, E_T) over real tokens (eq. 9); E = the embedding layer's output (B, T, H)."""
    return representation_loss(student_embeddings, teacher_embeddings, attention_mask, projection)


def hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor,
                projection: nn.Module | None = None) -> torch.Tensor:
    """L_hidn = MSE(H_S W_h, H_T) over real tokens (eq. 8); H = a layer's output (B, T, H)."""
    return representation_loss(student_hidden, teacher_hidden, attention_mask, projection)


def group_teacher_heads(teacher_scores: torch.Tensor, student_heads: int) -> torch.Tensor:
    """Average the teacher's heads in consecutive groups so they match the student's head count:
    (B, h_T, T, T) -> (B, h_S, T, T), student head i <-> mean of teacher heads [i*g, (i+1)*g), g = h_T / h_S.

    A teacher with fewer heads, or a head count that is not a multiple of the student's, is refused: there
    is no principled way to split one teacher head across several student heads."""
    batch, teacher_heads, queries, keys = teacher_scores.shape
    if teacher_heads == student_heads:
        return teacher_scores
    if student_heads <= 0 or teacher_heads % student_heads:
        raise ConfigError(f"attention distillation needs the teacher's heads ({teacher_heads}) to be a multiple "
                          f"of the student's ({student_heads}); choose a student with {teacher_heads} heads or "
                          f"a divisor of it, or drop the attention matches")
    group = teacher_heads // student_heads
    grouped = teacher_scores.reshape(batch, student_heads, group, queries, keys)  # (B, h_S, g, T, T)
    return grouped.mean(dim=2)  # (B, h_S, T, T)


def attention_loss(student_scores: torch.Tensor, teacher_scores: torch.Tensor,
                   attention_mask: torch.Tensor) -> torch.Tensor:
    """L_attn = (1/h) sum_i MSE(A_i^S, A_i^T) (eq. 7) over PRE-softmax scores, (B, h, T, T) each.

    Only the (query, key) pairs where both tokens are real count: padded rows and columns are excluded exactly,
    so the loss does not depend on padding. A teacher with more heads is averaged in groups
    (``group_teacher_heads``)."""
    teacher_scores = group_teacher_heads(teacher_scores, student_scores.shape[1])  # (B, h_S, T, T)
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(f"student scores {tuple(student_scores.shape)} and teacher scores "
                         f"{tuple(teacher_scores.shape)} differ in shape")
    mask = _real_token_mask(attention_mask, student_scores)  # (B, T)
    pair_mask = mask[:, None, :, None] * mask[:, None, None, :]  # (B, 1, T, T): real query and real key
    squared = (student_scores - teacher_scores).pow(2) * pair_mask  # (B, h, T, T)
    return squared.sum() / (pair_mask.sum() * student_scores.shape[1])


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
