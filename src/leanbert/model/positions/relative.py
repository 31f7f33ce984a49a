"""Relative position buckets: a learned per-head bias b[bucket(j - i)] added to the attention logits.

T5's bidirectional bucketing (Raffel et al. 2020, sec. 2.1; Mesh TensorFlow's ``_relative_position_bucket``):
half of the buckets for keys before the query, half for keys after; inside each half, the first half of the
buckets are exact distances and the rest grow logarithmically up to ``max_distance`` (farther keys share the
last bucket). TUPE-R and the paper's BERT-R baseline use 32 buckets and max distance 128 (Ke et al. 2021, sec. 4).

With ``untie_cls`` the [CLS] token (position 0) gets two buckets of its own, as the TUPE reference does
(guolinke/TUPE, transformer_sentence_encoder.py): ``num_buckets`` for "others to [CLS]" (column 0) and
``num_buckets // 2`` for "[CLS] to others" (row 0, written last, so [CLS] to itself too). Bucket
``num_buckets // 2`` is never produced by the bucketing itself (a key after the query is at distance >= 1).

``RelativeOptions`` are the ``model.position_options.*`` keys every built-in scheme takes for them (0 buckets =
none); ``relative_bias_or_none`` builds the term a scheme's options ask for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from leanbert.config import ConfigError, check_integer
from leanbert.model.config import ModelConfig

PREFIX = "model.position_options."


@dataclass
class RelativeOptions:
    """relative_buckets:      T5 relative buckets (0 = none; TUPE-R and BERT-R use 32), an even integer >= 4.
    relative_max_distance: distances beyond share the last bucket.
    untie_cls:             [CLS] gets its own position logits (TUPE) and its own two relative buckets."""

    relative_buckets: int = 0
    relative_max_distance: int = 128
    untie_cls: bool = True

    def __post_init__(self) -> None:
        buckets = self.relative_buckets
        if buckets != 0 and (isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 4 or buckets % 2):
            raise ConfigError(f"{PREFIX}relative_buckets={buckets!r} must be 0 (none) or an even integer >= 4")
        if buckets:  # the logarithmic buckets start at relative_buckets // 4
            check_integer(f"{PREFIX}relative_max_distance", self.relative_max_distance, buckets // 4 + 1)
        if not isinstance(self.untie_cls, bool):
            raise ConfigError(f"{PREFIX}untie_cls={self.untie_cls!r} must be true or false")

    @property
    def relative_reason(self) -> str | None:
        """Why transformers' own classes cannot hold these options (they have no relative buckets), or None."""
        return f"{PREFIX}relative_buckets={self.relative_buckets}" if self.relative_buckets else None


def relative_bucket_ids(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """(T, T) long: the T5 bidirectional bucket of key j seen from query i, a function of j - i only."""
    offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]  # (T, T) key minus query
    half = num_buckets // 2
    exact = half // 2
    side = (offset > 0).long() * half  # keys after the query use the upper half
    distance = offset.abs()
    # log(distance / exact) only where distance >= exact; the clamp keeps log(0) out of the unused branch
    far = exact + (torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
                   * (half - exact)).long()
    far = far.clamp(max=half - 1)
    return side + torch.where(distance < exact, distance, far)  # (T, T)


class RelativePositionBias(nn.Module):
    """A (buckets [+ 1], heads) table looked up by bucket: an additive per-head logits term (heads, T, T)."""

    def __init__(self, num_heads: int, num_buckets: int, max_distance: int, max_positions: int, untie_cls: bool):
        super().__init__()
        self.bias = nn.Embedding(num_buckets + int(untie_cls), num_heads)
        self.num_buckets, self.max_distance, self.max_positions = num_buckets, max_distance, max_positions
        self.untie_cls = untie_cls
        # Derived from the config, so not saved; sliced per forward (buckets depend on j - i, not on T).
        self.register_buffer("bucket_ids", self.derive_bucket_ids(), persistent=False)

    def derive_bucket_ids(self) -> torch.Tensor:
        """(P, P) long: the bucket of every (query, key) pair up to max_positions, [CLS]'s own when untied."""
        buckets = relative_bucket_ids(self.max_positions, self.num_buckets, self.max_distance)  # (P, P)
        if self.untie_cls:
            buckets[:, 0] = self.num_buckets  # others -> [CLS]
            buckets[0, :] = self.num_buckets // 2  # [CLS] -> others (and itself)
        return buckets

    def reset_derived_buffers(self) -> None:
        """Recompute the unsaved buffer, for loaders that build modules on the meta device and then only fill
        in the saved tensors (transformers' ``from_pretrained`` of a remote-code export)."""
        self.bucket_ids = self.derive_bucket_ids().to(self.bucket_ids.device)

    def forward(self, length: int) -> torch.Tensor:
        if length > self.bucket_ids.shape[0]:
            raise ValueError(f"sequence length {length} exceeds model.max_positions={self.bucket_ids.shape[0]}")
        return self.bias(self.bucket_ids[:length, :length]).permute(2, 0, 1)  # (heads, T, T)


def relative_bias_or_none(config: ModelConfig, options: RelativeOptions) -> RelativePositionBias | None:
    """The relative bucket term ``options`` ask for (``relative_buckets`` > 0), for any scheme."""
    if not options.relative_buckets:
        return None
    return RelativePositionBias(config.num_heads, options.relative_buckets, options.relative_max_distance,
                                config.max_positions, options.untie_cls)
