"""The position-scheme protocol (``PositionScheme``) and the encoder's way to build the configured one.

A scheme is one module, stored at ``encoder.embeddings.position_embeddings`` (the name BERT checkpoints use, so
saved model directories, the Hugging Face name maps and ELECTRA's embedding sharing see the same keys whatever
the scheme). It may contribute

- an input term (T, E) added to the word (+ token-type) embeddings before their LayerNorm (BERT's absolute
  positions), and/or
- an additive per-head attention bias (1|B, heads, T, T) (TUPE's untied position logits, relative buckets),
  which the encoder asks for ONCE per forward and combines with the padding bias before the first layer.
"""

from __future__ import annotations

import torch
from torch import nn

from leanbert.model.config import ModelConfig
from leanbert.model.registries import POSITION_SCHEMES


class PositionScheme(nn.Module):
    """What a position scheme may add; the defaults add nothing.

    ``attention_scale``: the word term's logit scale when the scheme changes it (TUPE: 1/sqrt(2d)); None keeps
    1/sqrt(d)."""

    attention_scale: float | None = None

    def input_term(self, length: int) -> torch.Tensor | None:
        """(T, E) added to every sequence's embeddings before the embedding LayerNorm, or None."""
        return None

    def attention_bias(self, length: int) -> torch.Tensor | None:
        """(1|B, heads, T, T) added to every layer's attention logits, or None. Called once per forward."""
        return None


def build_position_scheme(config: ModelConfig) -> PositionScheme:
    return POSITION_SCHEMES[config.position].scheme_class(config)
