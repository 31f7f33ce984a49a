"""``absolute``: BERT's learned absolute position embeddings, optionally with T5 relative buckets on top (BERT-R,
the baseline of Ke et al. 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanbert.model.config import ModelConfig
from leanbert.model.positions.base import PositionScheme
from leanbert.model.positions.relative import RelativeOptions, relative_bias_or_none
from leanbert.model.registries import PositionSchemeSpec, register_position_scheme


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
