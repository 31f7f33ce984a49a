"""The fine-tuning objective: a model with its task type's head, trained with the task type's loss
(``leanbert.tasks``): cross-entropy / MSE for sequence classification / regression as Hugging Face's
*ForSequenceClassification, start/end cross-entropy for extractive QA, ...

It is an ``Objective`` like the pretraining ones, so fine-tuning runs on the same training loop
(``out = objective(batch); out.loss.backward()``). Metrics follow ``objectives/metrics.py`` naming:
``task_loss``, ``task_count`` (examples in the batch) and what the type adds (``task_accuracy``), as
detached 0-d tensors (no host sync in ``forward``).
"""

from __future__ import annotations

import torch
from torch import nn

from leanbert.batch import Batch
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output
from leanbert.tasks import TaskType, get_task_type


class TaskObjective(Objective):
    """Wraps a ``LeanBertModel`` that carries ``task_type.head``."""

    def __init__(self, task_type: TaskType, model: LeanBertModel):
        super().__init__()
        if task_type.head not in model.config.heads:
            raise ValueError(f"the model has heads {model.config.heads}; fine-tuning a {task_type.name} task "
                             f"needs {task_type.head!r}")
        self.task_type = task_type
        self.model = model

    def outputs(self, batch: Batch):
        return self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids)

    def forward(self, batch: Batch) -> Output:
        return self.task_type.loss(self.outputs(batch), batch)

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model}


class SequenceClassification(TaskObjective):
    """The sequence task type's objective (a model with the ``classifier`` head)."""

    def __init__(self, model: LeanBertModel):
        super().__init__(get_task_type("sequence"), model)

    @property
    def regression(self) -> bool:
        return self.model.config.num_labels == 1

    def logits(self, batch: Batch) -> torch.Tensor:
        """(B, num_labels) classifier outputs."""
        return self.outputs(batch).logits
