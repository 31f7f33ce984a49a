"""The pretraining heads, with the names transformers gives their weights in each family.

- ``MaskedLMHead``: dense H -> E, activation, LayerNorm(E), then the word-embedding matrix (tied) + bias.
  With ``positions`` it scores only the selected tokens (sparse prediction): the V-sized projection, the
  most expensive matmul of pretraining, never runs on the ~85% of tokens that carry no target.
- ``SentencePairHead``: 2-way logits on the pooled [CLS] vector (BERT's NSP, ALBERT's SOP).
- ``ReplacedTokenHead``: ELECTRA's discriminator, one "replaced?" logit per token.

Heads are chosen by name (``model.heads``) from ``HEADS`` (``model/registries.py``). Each registration says what the head consumes and
which ``ModelOutput`` name its result gets, so ``LeanBertModel`` runs any head without knowing it: a new head
(e.g. MC-BERT's multi-choice head, fed candidate ids from the batch) is one class plus one ``register_head``
call, wherever the class lives.
"""

from __future__ import annotations

import torch
from torch import nn

from leanbert.model.attention import ACTIVATION_FUNCTIONS
from leanbert.model.config import ModelConfig
from leanbert.model.registries import register_head

__all__ = ["MaskedLMHead", "ReplacedTokenHead", "SentencePairHead"]


class MaskedLMHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.activation = ACTIVATION_FUNCTIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """hidden: (B, T, H); word_embeddings: (V, E), the tied input table; positions: optional (B, T) bool.

        Returns (B, T, V) logits, or (N, V) for the N selected positions in row-major order.
        """
        if positions is not None:
            hidden = hidden[positions]  # (N, H)
        x = self.norm(self.activation(self.dense(hidden)))  # (..., E)
        return torch.nn.functional.linear(x, word_embeddings, self.bias)  # (..., V)


class SentencePairHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))  # (B, 2)


class ReplacedTokenHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACTIVATION_FUNCTIONS[config.hidden_act]
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.activation(self.dense(hidden))).squeeze(-1)  # (B, T)


register_head("mlm", MaskedLMHead, ("hidden", "word_embeddings", "mlm_positions"), "mlm_logits", hf_names={
    "bert": {"dense": "cls.predictions.transform.dense", "norm": "cls.predictions.transform.LayerNorm",
             "bias": "cls.predictions.bias"},
    "albert": {"dense": "predictions.dense", "norm": "predictions.LayerNorm", "bias": "predictions.bias"},
    "electra": {"dense": "generator_predictions.dense", "norm": "generator_predictions.LayerNorm",
                "bias": "generator_lm_head.bias"}})
register_head("nsp", SentencePairHead, ("pooled",), "seq_relationship_logits",
              hf_names={"bert": {"classifier": "cls.seq_relationship"}})
register_head("sop", SentencePairHead, ("pooled",), "sop_logits",
              hf_names={"albert": {"classifier": "sop_classifier.classifier"}})
register_head("rtd", ReplacedTokenHead, ("hidden",), "rtd_logits", hf_names={
    "electra": {"dense": "discriminator_predictions.dense", "classifier": "discriminator_predictions.dense_prediction"}})
