"""Toy objectives for the loop's hooks: a buffer updated in after_step, and a student with a frozen teacher."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from leanbert.batch import Batch
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output
from leanbert.train.distributed import DistEnv, all_reduce_sum
from leanbert.train.frozen import FrozenModule
from train.train_synthetic import ClassifyObjective, tiny_model_config

VOCAB = 50


class TokenFrequencyObjective(ClassifyObjective):
    """ClassifyObjective plus an EMA of the token frequencies of each step's global batch, a stand-in for
    TNF's note dictionary: ``forward`` counts this rank's tokens, ``after_step`` folds every rank's counts in.
    ``combine=False`` applies only the rank-local counts (the bug the DDP buffer check must catch)."""

    def __init__(self, combine: bool = True, decay: float = 0.75, dropout: float = 0.0):
        super().__init__(tiny_model_config(dropout=dropout))
        self.combine, self.decay = combine, decay
        self.register_buffer("frequency", torch.zeros(VOCAB))  # (V,) EMA of the per-step token share
        self.pending = torch.zeros(VOCAB)  # (V,) this rank's counts since the last optimizer step
        self.hook_calls: list[tuple[int, bool]] = []  # (step, grad enabled) per after_step call

    def forward(self, batch: Batch) -> Output:
        if self.training:
            real = batch.input_ids[batch.attention_mask.bool()]  # (N,) this micro-batch's real tokens
            self.pending = self.pending + torch.bincount(real.cpu(), minlength=VOCAB).float()
        return super().forward(batch)

    def after_step(self, step: int, env: DistEnv) -> None:
        self.hook_calls.append((step, torch.is_grad_enabled()))
        counts = all_reduce_sum(self.pending.to(self.frequency.device), env) if self.combine else self.pending
        share = counts / counts.sum()  # (V,) integer counts: the sum is exact in any order
        self.frequency.mul_(self.decay).add_(share, alpha=1 - self.decay)
        self.pending = torch.zeros(VOCAB)


class DistillObjective(Objective):
    """A student trained to match a frozen teacher's logits. The teacher has dropout, so a teacher left in
    train mode would make the targets random (and a resumed run would differ)."""

    def __init__(self, teacher: LeanBertModel, source: str, student_seed: int = 0, dropout: float = 0.1):
        super().__init__()
        torch.manual_seed(student_seed)
        self.student = LeanBertModel(tiny_model_config(dropout=dropout))
        self.teacher = teacher
        self.source = source
        self.teacher_modes: list[bool] = []  # teacher.training at each training forward

    def forward(self, batch: Batch) -> Output:
        logits = self.student(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits  # (B, C)
        with torch.no_grad():
            target = self.teacher(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits  # (B, C)
        if self.training:
            self.teacher_modes.append(self.teacher.training)
        return Output(F.mse_loss(logits, target))

    def models(self):
        return {"model": self.student}

    def frozen_modules(self) -> dict[str, FrozenModule]:
        return {"teacher": FrozenModule(self.teacher, self.source)}


def make_teacher(seed: int) -> LeanBertModel:
    torch.manual_seed(seed)
    return LeanBertModel(tiny_model_config(dropout=0.5))
