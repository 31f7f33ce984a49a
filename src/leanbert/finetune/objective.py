"""The fine-tuning objective: a model with a ``classifier`` head, cross-entropy for classification and
mean squared error for regression (``num_labels == 1``), as Hugging Face's *ForSequenceClassification does.

It is an ``Objective`` like the pretraining ones, so fine-tuning runs on the same training loop
(``out = objective(batch); out.loss.backward()``). Metrics follow ``objectives/metrics.py`` naming:
``task_loss``, ``task_accuracy`` (classification only) and ``task_count`` (examples in the batch), as
detached 0-d tensors (no host sync in ``forward``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from leanbert.batch import Batch
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output


class SequenceClassification(Objective):
    """Wraps a ``LeanBertModel`` whose config has the ``classifier`` head."""

    def __init__(self, model: LeanBertModel):
        super().__init__()
        if "classifier" not in model.config.heads:
            raise ValueError(f"the model has heads {model.config.heads}; fine-tuning needs 'classifier'")
        self.model = model

    @property
    def regression(self) -> bool:
        return self.model.config.num_labels == 1

    def logits(self, batch: Batch) -> torch.Tensor:
        """(B, num_labels) classifier outputs."""
        return self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits

    def forward(self, batch: Batch) -> Output:
        if batch.class_labels is None:
            raise ValueError("fine-tuning needs batch.class_labels")
        logits = self.logits(batch)  # (B, C)
        n = logits.shape[0]
        count = logits.new_full((), float(n), dtype=torch.float32)
        if self.regression:
            scores = logits[:, 0].float()  # (B,)
            loss = F.mse_loss(scores, batch.class_labels.float())
            return Output(loss, {"task_loss": loss.detach(), "task_count": count})
        loss = F.cross_entropy(logits.float(), batch.class_labels)
        with torch.no_grad():
            accuracy = (logits.argmax(dim=-1) == batch.class_labels).float().mean()
        return Output(loss, {"task_loss": loss.detach(), "task_accuracy": accuracy, "task_count": count})

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model}
