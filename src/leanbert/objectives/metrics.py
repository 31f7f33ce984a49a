"""Metric naming and exact averaging over many batches.

Objectives return per-batch metrics as detached 0-d tensors (no host sync inside ``forward``). Names follow
``<group>_<stat>``; ``<group>_count`` is how many items that group's means are over (masked tokens for
``mlm``, pairs for ``nsp``/``sop``, non-pad tokens for ``rtd``). Means whose denominator is something else
are listed in ``WEIGHT_KEYS`` (precision is over predicted-replaced tokens, recall over replaced tokens), so
``aggregate_metrics`` reproduces the exact corpus-level value (e.g. sum of true positives / sum of
predicted positives), not a mean of per-batch ratios.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

# mean metric -> the count it is a mean over, where that is not "<group>_count"
WEIGHT_KEYS = {
    "rtd_precision": "rtd_predicted",
    "rtd_recall": "rtd_replaced",
}
# counts that are summed, not averaged (besides every "*_count")
COUNT_KEYS = frozenset(WEIGHT_KEYS.values())


def is_count(name: str) -> bool:
    return name.endswith("_count") or name in COUNT_KEYS


def weight_key(name: str) -> str | None:
    """The count a mean metric is weighted by, or None for a plain (unweighted) mean."""
    if name in WEIGHT_KEYS:
        return WEIGHT_KEYS[name]
    group, sep, _ = name.partition("_")
    return f"{group}_count" if sep else None


def _value(x: float | torch.Tensor) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def aggregate_metrics(batches: Iterable[Mapping[str, float | torch.Tensor]]) -> dict[str, float]:
    """Combine per-batch metrics: counts are summed, means are weighted by their count (a mean with total
    weight 0 is reported as 0.0, like scikit-learn's ``zero_division=0``); others are plain means."""
    batches = [{k: _value(v) for k, v in b.items()} for b in batches]
    names = list(dict.fromkeys(k for b in batches for k in b))
    out: dict[str, float] = {}
    for name in names:
        present = [b for b in batches if name in b]
        if is_count(name):
            out[name] = sum(b[name] for b in present)
            continue
        wkey = weight_key(name)
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
