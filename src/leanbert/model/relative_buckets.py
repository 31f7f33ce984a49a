"""Relative position buckets: a learned per-head bias b[bucket(j - i)] added to the attention logits.

T5's bidirectional bucketing (Raffel et al. 2020, sec. 2.1; Mesh TensorFlow's ``_relative_position_bucket``):
half of the buckets for keys before the query, half for keys after; inside each half, the first half of the
buckets are exact distances and the rest grow logarithmically up to ``max_distance`` (farther keys share the
last bucket). TUPE-R and the paper's BERT-R baseline use 32 buckets and max distance 128 (Ke et al. 2021, sec. 4).

With ``untie_cls`` the [CLS] token (position 0) gets two buckets of its own, as the TUPE reference does
(guolinke/TUPE, transformer_sentence_encoder.py): ``num_buckets`` for "others to [CLS]" (column 0) and
``num_buckets // 2`` for "[CLS] to others" (row 0, written last, so [CLS] to itself too). Bucket
``num_buckets // 2`` is never produced by the bucketing itself (a key after the query is at distance >= 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn


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
