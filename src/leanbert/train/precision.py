"""Losses and sampling read model outputs in float32 at least: under bf16 autocast (``train.precision=bf16``) the
outputs arrive in bfloat16, whose 8-bit mantissa is too coarse for a loss or a softmax over a vocabulary."""

from __future__ import annotations

import torch


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32; float32 and float64 unchanged (float64 reference tests stay exact)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
