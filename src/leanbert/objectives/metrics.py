"""Exact averaging of objective metrics over many batches (validation), and sync-free means.

Objectives return per-batch metrics as detached 0-d tensors (no host sync inside ``forward``). Names follow
``<group>_<stat>``; ``<group>_count`` is how many items that group's means are over (masked tokens for
``mlm``, pairs for ``nsp``/``sop``, non-pad tokens for ``rtd``). An objective declares the means whose
denominator is something else in its ``metric_weights`` (ELECTRA: precision over predicted-replaced tokens,
recall over replaced tokens), so ``aggregate_metrics`` reproduces the exact corpus-level value (e.g. sum of
true positives / sum of predicted positives), not a mean of per-batch ratios. The naming rule itself lives in
``leanbert.train.metrics`` (the training loop applies it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from leanbert.train.metrics import is_count, weight_key


def _value(x: float | torch.Tensor) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def aggregate_metrics(batches: Iterable[Mapping[str, float | torch.Tensor]],
                      weights: Mapping[str, str] | None = None) -> dict[str, float]:
    """Combine per-batch metrics: counts are summed, means are weighted by their count (``weights``: the
    objective's ``metric_weights``; a mean with total weight 0 is reported as 0.0, like scikit-learn's
    ``zero_division=0``); others are plain means."""
    weights = weights or {}
    batches = [{k: _value(v) for k, v in b.items()} for b in batches]
    names = list(dict.fromkeys(k for b in batches for k in b))
    out: dict[str, float] = {}
    for name in names:
        present = [b for b in batches if name in b]
        if is_count(name, weights):
            out[name] = sum(b[name] for b in present)
            continue
        wkey = weight_key(name, weights)
        if wkey is not None and all(wkey in b for b in present):
            total = sum(b[wkey] for b in present)
            out[name] = sum(b[name] * b[wkey] for b in present) / total if total else 0.0
        else:
            out[name] = sum(b[name] for b in present) / len(present)
    return out


def mean_over(values: torch.Tensor, count: int | torch.Tensor) -> torch.Tensor:
    """``values.sum() / max(count, 1)``: a mean that is 0, not NaN, when nothing was counted."""
    if isinstance(count, torch.Tensor):
        return values.sum() / count.clamp(min=1)
    return values.sum() / max(count, 1)
