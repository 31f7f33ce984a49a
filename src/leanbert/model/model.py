"""``LeanBertModel``: the encoder plus the heads named in ``config.heads``.

Outputs use Hugging Face's familiar names so users coming from ``transformers`` find their way:
``last_hidden_state``, ``pooler_output``, ``logits`` (classifier if present, else the replaced-token
discriminator, else MLM over all positions), ``mlm_logits``, ``seq_relationship_logits`` (NSP) and
``sop_logits`` (SOP).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanbert.config import ModelConfig
from leanbert.model.encoder import Encoder
from leanbert.model.heads import (
    MaskedLMHead,
    ReplacedTokenHead,
    SentencePairHead,
    SequenceClassifierHead,
)

HEAD_CLASSES = {
    "mlm": MaskedLMHead,
    "nsp": SentencePairHead,
    "sop": SentencePairHead,
    "rtd": ReplacedTokenHead,
    "classifier": SequenceClassifierHead,
}


@dataclass
class ModelOutput:
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None
    rtd_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    sop_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attention_scores: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, key: str):
        return getattr(self, key)


class LeanBertModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.heads = nn.ModuleDict({name: HEAD_CLASSES[name](config) for name in config.heads})
        self.heads.apply(self.encoder._init_weights)

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.encoder.embeddings.word_embeddings.weight  # (V, E)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, mlm_positions: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attention_scores: bool = False,
                **encoder_kwargs) -> ModelOutput:
        """input_ids, attention_mask, token_type_ids: (B, T). mlm_positions: optional (B, T) bool; when given,
        ``mlm_logits`` is (N, V) for just those positions (sparse prediction)."""
        enc = self.encoder(input_ids, attention_mask, token_type_ids,
                           output_hidden_states=output_hidden_states,
                           output_attention_scores=output_attention_scores, **encoder_kwargs)
        out = ModelOutput(last_hidden_state=enc.last_hidden_state, pooler_output=enc.pooler_output,
                          hidden_states=enc.hidden_states, attention_scores=enc.attention_scores)
        hidden, pooled = enc.last_hidden_state, enc.pooler_output
        for name, head in self.heads.items():
            if name == "mlm":
                out.mlm_logits = head(hidden, self.word_embeddings, mlm_positions)
            elif name == "nsp":
                out.seq_relationship_logits = head(pooled)
            elif name == "sop":
                out.sop_logits = head(pooled)
            elif name == "rtd":
                out.rtd_logits = head(hidden)
            elif name == "classifier":
                out.logits = head(hidden, pooled)
        if out.logits is None:
            out.logits = out.rtd_logits if out.rtd_logits is not None else out.mlm_logits
        return out

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts: total, embedding (the embedding module incl. its projection), non-embedding."""
        total = sum(p.numel() for p in self.parameters())
        embedding = sum(p.numel() for p in self.encoder.embeddings.parameters())
        return {"total": total, "embedding": embedding, "non_embedding": total - embedding}
