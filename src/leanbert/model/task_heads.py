"""Heads for token classification (NER) and multiple choice, shaped as transformers' own so export is a rename.

- ``TokenClassifierHead``: dropout + Linear(H, num_labels) on every hidden state, as
  {Bert, Albert, Electra}ForTokenClassification (``classifier``; no pooler involved).
- ``MultipleChoiceHead``: one score per (example, option) row. BERT / ALBERT score the pooled [CLS] vector
  (dropout + ``classifier`` Linear(H, 1), as BertForMultipleChoice); ELECTRA, which has no pooler, first runs
  [CLS] through Linear(H, H) + GELU (its ``sequence_summary``) and then ``classifier`` Linear(H, 1), as
  ElectraForMultipleChoice. The model sees the options as rows (B * C, T); the task reshapes the (B * C,)
  scores to (B, C) and masks missing options.

Both fill ``logits``, as the sequence classifier does, so code that reads a model's logits needs no new name.
``HF_NAMES`` maps each head's sub-modules to transformers' names, per family.
"""

from __future__ import annotations

import torch
from torch import nn

from leanbert.config import ModelConfig
from leanbert.model.heads import register_head


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


# leanbert "heads.<name>.<sub>" -> transformers name, per family (token classifiers have no pooler).
HF_NAMES = {
    "bert": {"token.classifier": "classifier", "choice.classifier": "classifier"},
    "albert": {"token.classifier": "classifier", "choice.classifier": "classifier"},
    "electra": {"token.classifier": "classifier", "choice.dense": "sequence_summary.summary",
                "choice.classifier": "classifier"},
}
HF_CLASS_SUFFIX = {"token": "ForTokenClassification", "choice": "ForMultipleChoice"}

register_head("token", TokenClassifierHead, ("hidden",), "logits")
register_head("choice", MultipleChoiceHead, ("hidden", "pooled"), "logits")
