"""Run a model over encoded rows whose outputs are not one vector per row (per-token tags, per-option scores):
batches by length, eval mode, no gradients, results back in input order as one numpy array per row.

Every rank computes every row (under torchrun too): scoring a dev set is small next to training, and rows of
different shapes would otherwise need a ragged gather.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from leanbert.batch import Batch

# (model output, the batch) -> one array per row of the batch
Take = Callable[[Any, Batch], list[np.ndarray]]


def row_outputs(model: torch.nn.Module, features: Sequence[Any], collator: Callable[[Sequence[Any]], Batch],
                batch_size: int, take: Take, length: Callable[[Any], int]) -> list[np.ndarray]:
    """``take``'s arrays for every feature, in input order (the model's train/eval mode is restored after)."""
    order = np.argsort([length(f) for f in features], kind="stable")
    device = next(model.parameters()).device
    results: list[np.ndarray | None] = [None] * len(features)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                batch = collator([features[i] for i in rows]).to(device)
                out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
                for i, array in zip(rows, take(out, batch), strict=True):
                    results[i] = array
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]
