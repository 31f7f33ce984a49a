"""The heads of the fine-tuning task types (leanbert.tasks), registered here so that a saved model with one of
them loads without importing the task package.

- ``SequenceClassifierHead`` (head ``classifier``): classification/regression; on the pooled vector when the
  encoder has a pooler (BERT, ALBERT), else ELECTRA's dense-GELU-dense head on the [CLS] hidden state.
- ``SpanHead`` (extractive QA, head ``span``): one Linear(H, 2) per token, (B, T, 2) start/end logits as
  ``ModelOutput.span_logits``; transformers' ``qa_outputs`` in Bert/Albert/ElectraForQuestionAnswering.

- ``TokenClassifierHead`` (NER, head ``token``): dropout + Linear(H, num_labels) on every hidden state, (B, T, L)
  ``logits``; ``classifier`` in Bert/Albert/ElectraForTokenClassification (no pooler involved).
- ``MultipleChoiceHead`` (head ``choice``): one score per (example, option) row, (N,) ``logits`` for N = B * C
  rows (the task reshapes them to (B, C) and masks missing options). BERT / ALBERT score the pooled [CLS] vector
  (dropout + ``classifier`` Linear(H, 1), as BertForMultipleChoice); ELECTRA, which has no pooler, first runs
  [CLS] through Linear(H, H) + GELU (its ``sequence_summary``), as ElectraForMultipleChoice.
"""

from __future__ import annotations

import torch
from torch import nn

from leanbert.model.config import ModelConfig
from leanbert.model.registries import register_head


class SequenceClassifierHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.uses_pooler = config.has_pooler
        self.dropout = nn.Dropout(config.hidden_dropout)
        # ELECTRA has no pooler: it classifies from [CLS] through its own dense + GELU layer.
        self.dense = None if self.uses_pooler else nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        if self.uses_pooler:
            x = pooled  # (B, H)
        else:
            x = self.dropout(hidden[:, 0])
            x = torch.nn.functional.gelu(self.dense(x))  # (B, H)
        return self.classifier(self.dropout(x))  # (B, num_labels)


register_head("classifier", SequenceClassifierHead, ("hidden", "pooled"), "logits")


class SpanHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.qa_outputs(hidden)  # (B, T, 2): start, end


register_head("span", SpanHead, ("hidden",), "span_logits")


class TokenClassifierHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(hidden))  # (B, T, num_labels)


class MultipleChoiceHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.uses_pooler = config.has_pooler
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.dense = None if self.uses_pooler else nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        if self.uses_pooler:
            x = pooled  # (N, H), N = examples * options
        else:
            x = torch.nn.functional.gelu(self.dense(hidden[:, 0]))  # (N, H)
        return self.classifier(self.dropout(x)).squeeze(-1)  # (N,)


register_head("token", TokenClassifierHead, ("hidden",), "logits")
register_head("choice", MultipleChoiceHead, ("hidden", "pooled"), "logits")
