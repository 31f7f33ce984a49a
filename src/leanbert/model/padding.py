"""Padding: the additive padding bias, and unpadding (position-wise work on real tokens only).

A batch of variable-length sequences padded to T wastes the padded fraction of every matmul. The residual
stream is kept as (N, H) for the N real tokens; only attention, which needs the (B, T) layout, scatters into a
zero-padded tensor and gathers back. The padded positions of the final output are zeros.

Deciding whether to unpad reads the mask's fill on the host (one device sync) and makes the number of real
tokens a data-dependent shape. ``set_unpadding(model, False)`` turns both off, for export/tracing and for GPUs
where unpadding does not pay; the encoder then always runs padded with the padding bias, and syncs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

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


def padding_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) 1/0 mask -> (B, 1, 1, T) additive bias: 0 for keys to attend to, dtype-min for padding."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


@dataclass(frozen=True)
class PaddingPlan:
    """How one forward treats padding: ``mask_keys``: add the padding bias; ``layout``: unpad (or None)."""

    mask_keys: bool
    layout: TokenLayout | None


class Unpadding(nn.Module):
    """The encoder's unpadding switch (a stateless module, so ``set_unpadding`` finds it in any model)."""

    def __init__(self, enabled: bool = True):
        super().__init__()
        self.enabled = enabled

    def plan(self, attention_mask: torch.Tensor | None) -> PaddingPlan:
        """attention_mask: (B, T) 1 = token, 0 = padding, or None (no padding)."""
        if attention_mask is None:
            return PaddingPlan(mask_keys=False, layout=None)
        if not self.enabled:
            return PaddingPlan(mask_keys=True, layout=None)  # no host sync, static shapes
        fill = float(attention_mask.float().mean())  # the one host sync
        if fill >= 1.0:
            return PaddingPlan(mask_keys=False, layout=None)  # nothing to mask: SDPA runs without a mask
        layout = TokenLayout.from_mask(attention_mask) if should_unpad(fill) else None
        return PaddingPlan(mask_keys=True, layout=layout)

    def extra_repr(self) -> str:
        return f"enabled={self.enabled}"


def set_unpadding(module: nn.Module, enabled: bool) -> None:
    """Turn unpadding on or off for every encoder inside ``module`` (a model, an objective, a wrapper);
    a module without encoders is left as it is."""
    for switch in module.modules():
        if isinstance(switch, Unpadding):
            switch.enabled = enabled
