"""Validation of a run-directory job: the first batches of a fixed validation stream, metrics combined exactly."""

from __future__ import annotations

from collections.abc import Callable

import torch

from leanbert.objectives.metrics import aggregate_metrics
from leanbert.train.metrics import is_count


def make_eval_fn(valid_loader, num_batches: int, device: torch.device,
                 derived_metrics: Callable[[dict[str, float]], dict[str, float]] | None = None):
    """Validation: the first ``num_batches`` batches of the (fixed, in-order) validation stream; metrics
    combined exactly (counts summed, means weighted by their counts, as the objective's ``metric_weights``
    declare), plus the objective's ``derived_metrics`` (e.g. ELECTRA's all-"original" baseline)."""

    def evaluate(objective: torch.nn.Module) -> dict[str, float]:
        weights = getattr(objective, "metric_weights", {})
        valid_loader.load_state_dict({"epoch": 0, "batch": 0})
        per_batch = []
        for i, batch in enumerate(valid_loader):
            if i >= num_batches:
                break
            out = objective(batch.to(device))
            per_batch.append({"loss": out.loss.detach(), **out.metrics})
        metrics = aggregate_metrics(per_batch, weights)
        if derived_metrics is not None:
            metrics.update(derived_metrics(metrics))
        return {k: v for k, v in metrics.items() if not is_count(k, weights)}  # totals say little about quality

    return evaluate
