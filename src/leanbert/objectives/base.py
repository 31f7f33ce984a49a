"""The objective interface: an ``nn.Module`` that owns its networks and turns a batch into a loss.

The trainer only does ``out = objective(batch); out.loss.backward()``, so pretraining, distillation and
fine-tuning share one training loop. ``networks()`` are the live modules by role (add-ons hook into them),
``saved_models()`` what a run writes (copies where the live networks share training-only parts). Two optional hooks the loop honours: ``after_step`` (state updated after
each optimizer step) and ``frozen_modules`` (networks that are never trained, such as a teacher).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from leanbert.batch import Batch
from leanbert.train.frozen import FrozenModule

if TYPE_CHECKING:
    from leanbert.train.distributed import DistEnv


@dataclass
class Output:
    """loss: scalar tensor to minimise. metrics: detached scalars for logging (floats or 0-d tensors)."""

    loss: torch.Tensor
    metrics: dict[str, float | torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """Base class. Subclasses implement ``forward(batch) -> Output`` and ``networks()``."""

    def forward(self, batch: Batch) -> Output:  # pragma: no cover - interface
        raise NotImplementedError

    def networks(self) -> dict[str, nn.Module]:
        """The LIVE networks this objective trains, by role (e.g. {"model": ...} or {"discriminator": ...,
        "generator": ...}); it holds the role its registry entry keeps (``ObjectiveSpec.kept``). Add-ons hook
        into these modules, so they must be the ones ``forward`` runs."""
        raise NotImplementedError

    def saved_models(self) -> dict[str, nn.Module]:
        """What a run saves as RUN/model, by the same roles as ``networks()``: the networks themselves, or
        plain copies where a live network carries training-only parts (MC-BERT's shared projected table)."""
        return self.networks()

    def models(self) -> dict[str, nn.Module]:
        """The networks to save, by role. Fine-tuning and distillation objectives implement this one;
        pretraining objectives implement ``networks()`` (and ``saved_models()``), which this returns."""
        return self.saved_models()

    def after_step(self, step: int, env: DistEnv) -> None:
        """Called by the training loop after every optimizer step (``step`` = steps done), under no_grad, on
        every rank. Update state that is not trained by gradients here (TNF's notes, an EMA), from what
        ``forward`` kept of this step's micro-batches. Keep such state in buffers (so checkpoints hold it) and
        identical on every rank: combine the ranks' contributions with ``leanbert.train.distributed``'s
        ``all_reduce_sum`` or ``gather_rows`` before applying them (DDP does not broadcast buffers)."""

    def frozen_modules(self) -> dict[str, FrozenModule]:
        """Sub-modules that are never trained, by name, e.g. {"teacher": FrozenModule(teacher, source=path)}.
        The loop keeps them in eval mode without gradients or optimizer state, and checkpoints store their
        source and fingerprint instead of their weights (leanbert.train.frozen)."""
        return {}

    def train(self, mode: bool = True) -> Objective:
        """Like ``nn.Module.train``, but frozen modules stay in eval mode (a teacher never runs dropout)."""
        super().train(mode)
        for frozen in self.frozen_modules().values():
            frozen.module.eval()
        return self


class ObjectiveWrapper(Objective):
    """Base of an add-on: wraps ``inner`` and passes the contract through (live networks, saved models, frozen
    modules, ``after_step``, metric weights), so a wrapper only adds what it changes. A subclass that keeps
    state after each step calls ``super().after_step`` first."""

    def __init__(self, inner: Objective):
        super().__init__()
        self.inner = inner
        self.metric_weights = dict(getattr(inner, "metric_weights", {}))

    def forward(self, batch: Batch) -> Output:
        return self.inner(batch)

    def networks(self) -> dict[str, nn.Module]:
        return self.inner.networks()

    def saved_models(self) -> dict[str, nn.Module]:
        return self.inner.saved_models()

    def frozen_modules(self) -> dict[str, FrozenModule]:
        return self.inner.frozen_modules()

    def after_step(self, step: int, env: DistEnv) -> None:
        self.inner.after_step(step, env)
