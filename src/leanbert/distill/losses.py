"""TinyBERT's distillation losses as stateless functions (Jiao et al., 2020, "TinyBERT: Distilling BERT for
Natural Language Understanding", eqs. 7-11).

* embedding / hidden (eqs. 8-9): MSE(X_S W, X_T) over the real (non-padded) tokens only; ``W`` is a learned
  projection owned by the caller (the distillation objective), ``None`` when the widths already match.
* attention (eq. 7): (1/h) sum_i MSE(A_i^S, A_i^T) between PRE-softmax score matrices, over the (query, key)
  pairs where both positions are real tokens. The reference code instead zeroes every score <= -100 on both
  sides, which counts padded entries as (0, 0) pairs and so depends on the amount of padding; here padding
  changes nothing (tested).
* prediction (eq. 10): per task type, so it lives with the task types (``leanbert.tasks.prediction_loss``).

Every MSE averages over the elements it compares, so a loss's scale does not depend on batch size, padding
or sequence length.
"""

from __future__ import annotations

import torch
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
