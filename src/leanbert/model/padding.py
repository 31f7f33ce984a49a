"""Unpadding: run the position-wise work (projections, FFN, LayerNorm, dropout) on real tokens only.

A batch of variable-length sequences padded to T wastes the padded fraction of every matmul. The residual
stream is kept as (N, H) for the N real tokens; only attention, which needs the (B, T) layout, scatters into a
zero-padded tensor and gathers back. The padded positions of the final output are zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Below this fraction of real tokens, unpadding saves more matmul work than its gathers/scatters cost.
UNPAD_BELOW_FILL = 0.95


@dataclass(frozen=True)
class TokenLayout:
    """Where the N real tokens of a (B, T) batch live: ``index`` (N,) into the flattened B * T positions."""

    index: torch.Tensor
    batch: int
    length: int

    @staticmethod
    def from_mask(attention_mask: torch.Tensor) -> TokenLayout:
        B, T = attention_mask.shape
        return TokenLayout(attention_mask.reshape(-1).nonzero().squeeze(1), B, T)

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...)."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...) with zeros at padded positions (differentiable)."""
        out = x.new_zeros(self.batch * self.length, *x.shape[1:])
        return out.index_copy(0, self.index, x).view(self.batch, self.length, *x.shape[1:])


def should_unpad(fill: float) -> bool:
    """``fill``: the fraction of real tokens in the batch."""
    return fill < UNPAD_BELOW_FILL
