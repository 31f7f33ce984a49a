"""Remote-code wrappers of the task heads beyond sequence classification (extractive QA, token classification,
multiple choice), with transformers' interfaces and output classes.

``leanbert export`` ships this file as ``modeling_leanbert_tasks.py`` next to ``modeling_leanbert.py`` (the one
import below is rewritten to that sibling), and config.json's ``auto_map`` points AutoModelForQuestionAnswering /
ForTokenClassification / ForMultipleChoice here. Parameter names equal leanbert's: ``leanbert.encoder.*`` and
the head under the task head's name (``span``, ``token``, ``choice``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import (
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    TokenClassifierOutput,
)

from .remote_modeling import LeanBertConfig, LeanBertModel, LeanBertPreTrainedModel


class SpanHead(nn.Module):
    """Extractive QA: one Linear(H, 2) per token -> start and end logits (transformers' ``qa_outputs``)."""

    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.qa_outputs(hidden)  # (B, T, 2)


class LeanBertForQuestionAnswering(LeanBertPreTrainedModel):
    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.leanbert = LeanBertModel(config)
        self.span = SpanHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, start_positions=None,
                end_positions=None, output_hidden_states=None, return_dict=None, **kwargs):
        base = self.leanbert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        start_logits, end_logits = self.span(base.last_hidden_state).unbind(dim=-1)  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.shape[1]  # positions outside the window are clamped and ignored
            start = F.cross_entropy(start_logits, start_positions.clamp(0, ignored), ignore_index=ignored)
            end = F.cross_entropy(end_logits, end_positions.clamp(0, ignored), ignore_index=ignored)
            loss = (start + end) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=base.hidden_states)


class TokenClassifierHead(nn.Module):
    """Dropout + Linear(H, num_labels) on every hidden state (transformers' token ``classifier``)."""

    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(hidden))  # (B, T, L)


class LeanBertForTokenClassification(LeanBertPreTrainedModel):
    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.leanbert = LeanBertModel(config)
        self.token = TokenClassifierHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        base = self.leanbert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.token(base.last_hidden_state)  # (B, T, L)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)


class MultipleChoiceHead(nn.Module):
    """One score per option row: the pooled vector (BERT, ALBERT), else dense + GELU on [CLS] (ELECTRA)."""

    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.uses_pooler = config.family != "electra"
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.dense = None if self.uses_pooler else nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        x = pooled if self.uses_pooler else F.gelu(self.dense(hidden[:, 0]))  # (N, H)
        return self.classifier(self.dropout(x)).squeeze(-1)  # (N,)


class LeanBertForMultipleChoice(LeanBertPreTrainedModel):
    """transformers' multiple-choice interface: inputs (B, C, T), logits (B, C)."""

    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.leanbert = LeanBertModel(config)
        self.choice = MultipleChoiceHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        options = input_ids.shape[1]

        def rows(x):
            return None if x is None else x.reshape(-1, x.shape[-1])  # (B * C, T)

        base = self.leanbert(rows(input_ids), rows(attention_mask), rows(token_type_ids), output_hidden_states)
        logits = self.choice(base.last_hidden_state, base.pooler_output).view(-1, options)  # (B, C)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)
