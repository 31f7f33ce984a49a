"""GLUE metrics in numpy, checked against scikit-learn and scipy in tests/finetune/test_finetune_metrics.py.

All functions take ``(predictions, labels)`` as array-likes of equal, non-zero length and return a float.
Degenerate inputs follow scikit-learn where it defines a value and return 0.0 otherwise, so a metrics dict
is always finite and JSON-serialisable:

* ``f1`` with no positive prediction and no positive label: 0.0 (sklearn's ``zero_division`` default).
* ``mcc`` when predictions or labels hold a single class: 0.0 (as sklearn).
* ``pearson`` / ``spearman`` when predictions or labels are constant: 0.0. scipy returns NaN with a
  warning; 0.0 says "no measurable correlation", which is what a model that predicts a constant has, and
  keeps mean/std over seeds finite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def _pair(predictions: Any, labels: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predictions)
    y = np.asarray(labels)
    if p.ndim != 1 or y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} must be 1-D arrays of equal length")
    if p.size == 0:
        raise ValueError("cannot compute a metric on zero examples")
    if kind == "float":
        p, y = p.astype(np.float64), y.astype(np.float64)
        if not (np.isfinite(p).all() and np.isfinite(y).all()):
            raise ValueError("predictions and labels must be finite numbers")
    return p, y


def accuracy(predictions: Any, labels: Any) -> float:
    """Fraction of exact matches."""
    p, y = _pair(predictions, labels, "class")
    return float(np.mean(p == y))


def f1(predictions: Any, labels: Any, positive: int = 1) -> float:
    """Binary F1 of the ``positive`` class: 2 TP / (2 TP + FP + FN)."""
    p, y = _pair(predictions, labels, "class")
    tp = int(np.sum((p == positive) & (y == positive)))
    fp = int(np.sum((p == positive) & (y != positive)))
    fn = int(np.sum((p != positive) & (y == positive)))
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0


def mcc(predictions: Any, labels: Any) -> float:
    """Matthews correlation, multi-class form (Gorodkin, 2004), the one sklearn uses.

    With C the confusion matrix, s = n examples, c = correct, t_k / p_k = true / predicted counts of class k:
    (c s - sum_k t_k p_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2)); 0 when a factor is 0."""
    p, y = _pair(predictions, labels, "class")
    _, codes = np.unique(np.concatenate([p, y]), return_inverse=True)
    k = int(codes.max()) + 1
    p_counts = np.bincount(codes[: p.size], minlength=k).astype(np.float64)
    t_counts = np.bincount(codes[p.size:], minlength=k).astype(np.float64)
    s = float(p.size)
    c = float(np.sum(p == y))
    cov_pt = c * s - float(t_counts @ p_counts)
    cov_pp = s * s - float(p_counts @ p_counts)
    cov_tt = s * s - float(t_counts @ t_counts)
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return float(cov_pt / np.sqrt(cov_pp * cov_tt))


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    # An exact constant check: the mean of a constant float array need not equal its value, so
    # ``x - x.mean()`` can leave rounding noise that would pass for a correlation of +-1.
    if np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    dx = x - x.mean()
    dy = y - y.mean()
    r = float(dx @ dy / np.sqrt((dx @ dx) * (dy @ dy)))
    return max(-1.0, min(1.0, r))


def pearson(predictions: Any, labels: Any) -> float:
    """Pearson's r; 0.0 if either side is constant."""
    return _correlation(*_pair(predictions, labels, "float"))


def rank_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (scipy.stats.rankdata's 'average')."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first occurrence
    return (first + (counts + 1) / 2.0)[inverse]


def spearman(predictions: Any, labels: Any) -> float:
    """Spearman's rho: Pearson's r of the tie-averaged ranks; 0.0 if either side is constant."""
    p, y = _pair(predictions, labels, "float")
    return _correlation(rank_average(p), rank_average(y))


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
}


def compute_metrics(names: Sequence[str], predictions: Any, labels: Any) -> dict[str, float]:
    """``{name: value}`` for each metric name."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    return {name: METRICS[name](predictions, labels) for name in names}


def split_metrics(names: Sequence[str], outputs: Mapping[str, tuple[Any, Any]]) -> dict[str, float]:
    """Metrics of every dev split. ``outputs``: split -> (predictions, labels). One split gives plain names
    (``accuracy``); several give ``<name>_<split>`` (MNLI: ``accuracy_matched``, ``accuracy_mismatched``)."""
    if not outputs:
        raise ValueError("no dev split to score")
    result: dict[str, float] = {}
    for split, (predictions, labels) in outputs.items():
        values = compute_metrics(names, predictions, labels)
        suffix = "" if len(outputs) == 1 else f"_{split}"
        result.update({f"{name}{suffix}": value for name, value in values.items()})
    return result


def aggregate_seeds(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single run) of each metric over seeds:
    ``{"accuracy": ...}`` per run -> ``{"accuracy_mean": ..., "accuracy_std": ...}``."""
    if not runs:
        raise ValueError("no runs to aggregate")
    names = list(runs[0])
    for i, run in enumerate(runs):
        if set(run) != set(names):
            raise ValueError(f"run {i} has metrics {sorted(run)}, run 0 has {sorted(names)}")
    result: dict[str, float] = {}
    for name in names:
        values = np.array([float(run[name]) for run in runs], dtype=np.float64)
        result[f"{name}_mean"] = float(values.mean())
        result[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return result


def predictions_from_logits(logits: Any, regression: bool) -> np.ndarray:
    """(N, num_labels) logits -> (N,) class indices (argmax), or (N,) / (N, 1) scores -> (N,) floats."""
    x = np.asarray(logits)
    if regression:
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise ValueError(f"regression outputs must have shape (N,) or (N, 1), got {x.shape}")
        return x.astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"classification logits must have shape (N, num_labels), got {x.shape}")
    return x.argmax(axis=1)
