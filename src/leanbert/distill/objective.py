"""TinyBERT's distillation objective (Jiao et al., 2020, eq. 11): a frozen teacher, a student, and the weighted
sum of the layer matches' losses (matches.py, losses.py), plus optionally the prediction-layer loss.

* Intermediate layers: each ``LayerMatch`` compares the student's embedding output, a layer's output or a
  layer's PRE-softmax attention scores with the teacher's. Embedding and hidden states go through learned
  projections W_e and W_h (H_S -> H_T), separate as in the paper, or one shared as the reference code's
  ``fit_dense`` (``shared_projection``); none when the widths match. The projections train with the student
  and are dropped afterwards (``models()`` is the student alone).
* Prediction layer: the task type's ``distill_loss`` (leanbert.tasks): for sequence tasks soft cross-entropy to
  the teacher's logits at a temperature, optionally mixed with the gold labels, MSE for a regression student
  (``num_labels == 1``); for QA the same on the start and end distributions.

The teacher is declared frozen (``frozen_modules``): the training loop keeps it in eval mode with no gradient
and no optimizer state, and checkpoints record its source and fingerprint instead of its weights. Metrics:
``distill_<feature>`` (the weighted sum of that feature's terms: embedding, attention, hidden, prediction) and
``distill_count`` (sequences in the batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from leanbert.batch import Batch
from leanbert.config import ConfigError
from leanbert.distill.losses import attention_loss, representation_loss
from leanbert.distill.matches import LayerMatch, select_feature
from leanbert.distill.teacher_cache import CachedOutputs, TeacherCache, needed_features
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output
from leanbert.tasks import TaskType, get_task_type
from leanbert.train.frozen import FrozenModule
from leanbert.train.precision import full_precision

REPRESENTATIONS = ("embedding", "hidden")



@dataclass(frozen=True)
class PredictionTarget:
    """The prediction-layer term: soft cross-entropy at ``temperature`` (MSE for regression), with a share
    ``hard_label_weight`` of the gold-label loss."""

    temperature: float = 1.0
    hard_label_weight: float = 0.0


def check_heads(matches: Sequence[LayerMatch], student: LeanBertModel, teacher: LeanBertModel) -> None:
    """Attention matches average the teacher's heads in groups: its count must be a multiple of the student's."""
    if any(m.feature == "attention" for m in matches):
        teacher_heads, student_heads = teacher.config.num_heads, student.config.num_heads
        if teacher_heads % student_heads:
            raise ConfigError(f"attention matches need the teacher's heads ({teacher_heads}) to be a multiple of "
                              f"the student's ({student_heads}): set model.num_heads to a divisor of "
                              f"{teacher_heads}, or leave attention out of distill.features")


class TransformerDistillation(Objective):
    """``student`` learns ``matches`` (and ``prediction``, when given) from the frozen ``teacher``, whose
    origin ``teacher_source`` names in checkpoints and messages."""

    def __init__(self, student: LeanBertModel, teacher: LeanBertModel, teacher_source: str,
                 matches: Sequence[LayerMatch], prediction: PredictionTarget | None = None,
                 shared_projection: bool = False, cache: TeacherCache | None = None,
                 task_type: TaskType | None = None):
        super().__init__()
        if not matches and prediction is None:
            raise ConfigError("distillation needs at least one layer match or the prediction layer")
        self.task_type = task_type or get_task_type("sequence")  # whose prediction layer is distilled
        head = self.task_type.head
        if prediction is not None and (head not in student.config.heads or head not in teacher.config.heads):
            raise ConfigError(f"prediction-layer distillation needs a {head} head on student and teacher")
        check_heads(matches, student, teacher)
        self.student, self.teacher = student, teacher
        self.teacher_source = teacher_source
        self.matches = tuple(matches)
        self.prediction = prediction
        self.projections = nn.ModuleDict(self._make_projections(shared_projection))
        self.cache = cache  # the teacher's outputs per training row (teacher_cache.py), or None
        self._cached_features = needed_features(self.matches)

    def _make_projections(self, shared: bool) -> dict[str, nn.Linear]:
        student_width, teacher_width = self.student.config.hidden_size, self.teacher.config.hidden_size
        needed = sorted({m.feature for m in self.matches} & set(REPRESENTATIONS))
        if student_width == teacher_width or not needed:
            return {}
        names = ["shared"] if shared else needed
        projections = {}
        for name in names:
            linear = nn.Linear(student_width, teacher_width)
            nn.init.normal_(linear.weight, std=self.student.config.initializer_range)
            nn.init.zeros_(linear.bias)
            projections[name] = linear
        return projections

    def projection(self, feature: str) -> nn.Module | None:
        """W_e (embedding) or W_h (hidden), the shared one, or None when the widths match."""
        if not self.projections:
            return None
        return self.projections["shared"] if "shared" in self.projections else self.projections[feature]

    def _run(self, model: LeanBertModel, batch: Batch, hidden: bool, scores: bool):
        """The model's outputs; without a prediction term only the encoder runs (a teacher's MLM head over
        every position would cost as much as a layer and is never read)."""
        run = model if self.prediction is not None else model.encoder
        return run(batch.input_ids, batch.attention_mask, batch.token_type_ids, output_hidden_states=hidden,
                   output_attention_scores=scores)

    def _teacher_outputs(self, batch: Batch, hidden: bool, scores: bool):
        """From the cache when it holds everything this batch needs (training rows only: a batch without
        ``row_index``, e.g. validation, runs the teacher), else from the teacher itself."""
        cache = self.cache
        if cache is not None and batch.row_index is not None and cache.covers(self._cached_features):
            width = batch.input_ids.shape[1]
            out = cache.outputs(batch.row_index, width, self._cached_features)
            device = batch.input_ids.device
            return CachedOutputs(
                out.logits.to(device) if self.prediction is not None else None,
                [None if t is None else t.to(device) for t in out.hidden_states or []] or None,
                [None if t is None else t.to(device) for t in out.attention_scores or []] or None)
        with torch.no_grad():
            return self._run(self.teacher, batch, hidden, scores)

    def forward(self, batch: Batch) -> Output:
        features = {m.feature for m in self.matches}
        hidden = bool(features & set(REPRESENTATIONS))
        scores = "attention" in features
        student = self._run(self.student, batch, hidden, scores)
        teacher = self._teacher_outputs(batch, hidden, scores)
        mask = batch.attention_mask  # (B, T)
        total = None
        metrics: dict[str, torch.Tensor] = {}
        for match in self.matches:
            ours = select_feature(student.hidden_states, student.attention_scores, match.feature, match.student)
            theirs = select_feature(teacher.hidden_states, teacher.attention_scores, match.feature,
                                    match.teacher)
            if match.feature == "attention":
                term = attention_loss(full_precision(ours), full_precision(theirs), mask)  # (B, h, T, T) each
            else:
                projected = self.projection(match.feature)
                if projected is not None:
                    ours = projected(ours)  # (B, T, H_T)
                term = representation_loss(full_precision(ours), full_precision(theirs), mask)  # (B, T, H_T) each
            term = match.weight * term
            total = term if total is None else total + term
            key = f"distill_{match.feature}"
            metrics[key] = metrics.get(key, 0.0) + term.detach()
        if self.prediction is not None:
            term = self.task_type.distill_loss(student, teacher, batch, self.prediction.temperature,
                                               self.prediction.hard_label_weight)
            total = term if total is None else total + term
            metrics["distill_prediction"] = term.detach()
        metrics["distill_count"] = mask.new_full((), float(mask.shape[0]), dtype=torch.float32)
        return Output(total, metrics)

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.student}

    def frozen_modules(self) -> dict[str, FrozenModule]:
        return {"teacher": FrozenModule(self.teacher, self.teacher_source)}
