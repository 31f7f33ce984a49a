"""Position schemes, chosen by ``ModelConfig.position`` through ``POSITION_SCHEMES`` and owned by the encoder.

A scheme is one module, stored at ``encoder.embeddings.position_embeddings`` (the name BERT checkpoints use, so
saved model directories, the Hugging Face name maps and ELECTRA's embedding sharing see the same keys whatever
the scheme). It may contribute

- an input term (T, E) added to the word (+ token-type) embeddings before their LayerNorm (BERT's absolute
  positions), and/or
- an additive per-head attention bias (1|B, heads, T, T) (TUPE's untied position logits, relative buckets),
  which the encoder asks for ONCE per forward and combines with the padding bias before the first layer.

Adding a scheme = one file with a ``PositionScheme`` subclass, its options dataclass (the
``model.position_options.*`` keys, validated in its ``__post_init__``) and one ``register_position_scheme``
call, imported by the model package's face (``leanbert/model/__init__.py``). ``ModelConfig`` validates
``model.position`` and ``model.position_options`` against this registry; what other code must know about a
scheme is asked from its entry (``hf_reason``, ``shareable_across_widths``), never from its name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanbert.model.config import ModelConfig
from leanbert.model.registries import POSITION_SCHEMES, PositionSchemeSpec, register_position_scheme
from leanbert.model.relative_buckets import RelativeOptions, relative_bias_or_none

__all__ = ["POSITION_SCHEMES", "AbsoluteOptions", "AbsolutePositions", "PositionScheme", "PositionSchemeSpec",
           "build_position_scheme", "register_position_scheme"]


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


@dataclass
class AbsoluteOptions(RelativeOptions):
    """``absolute``'s options: only the relative buckets it may add (BERT-R)."""


class AbsolutePositions(nn.Embedding, PositionScheme):
    """BERT's learned absolute positions: row t of a (max_positions, E) table is added to the token at t.

    An ``nn.Embedding`` itself, so its parameter keeps the key ``position_embeddings.weight`` and BERT's
    initialisation applies to it like to every other embedding table."""

    def __init__(self, config: ModelConfig):
        super().__init__(config.max_positions, config.embedding_size)
        self.relative = relative_bias_or_none(config, config.scheme_options)  # BERT-R: T5 relative buckets on top

    def input_term(self, length: int) -> torch.Tensor:
        if length > self.num_embeddings:
            raise ValueError(f"sequence length {length} exceeds model.max_positions={self.num_embeddings}")
        return self.weight[:length]  # (T, E)

    def attention_bias(self, length: int) -> torch.Tensor | None:
        return None if self.relative is None else self.relative(length).unsqueeze(0)  # (1, heads, T, T)


register_position_scheme(PositionSchemeSpec(
    "absolute", AbsolutePositions, AbsoluteOptions, hf_reason=lambda options: options.relative_reason,
    shareable_across_widths=lambda options: options.relative_reason is None))  # bucket tables are per head
