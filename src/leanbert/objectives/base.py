"""The objective interface: an ``nn.Module`` that owns its networks and turns a batch into a loss.

The trainer only does ``out = objective(batch); out.loss.backward()``, so pretraining, distillation and
fine-tuning share one training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from leanbert.batch import Batch


@dataclass
class Output:
    """loss: scalar tensor to minimise. metrics: detached scalars for logging (floats or 0-d tensors)."""

    loss: torch.Tensor
    metrics: dict[str, float | torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """Base class. Subclasses implement ``forward(batch) -> Output`` and ``models()``."""

    def forward(self, batch: Batch) -> Output:  # pragma: no cover - interface
        raise NotImplementedError

    def models(self) -> dict[str, nn.Module]:
        """The networks to save at the end of a run, by name (e.g. {"model": ...} or
        {"discriminator": ..., "generator": ...})."""
        raise NotImplementedError
