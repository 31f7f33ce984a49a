"""Training metrics: averaged on the device over a logging interval, written as ``metrics.jsonl`` lines
(and optionally TensorBoard events).

The naming rule: ``<group>_<stat>`` is a mean over ``<group>_count`` items (``mlm_accuracy`` over
``mlm_count``), unless the objective's ``metric_weights`` names another count (ELECTRA: ``rtd_precision`` ->
``rtd_predicted``); every ``*_count`` and every such weight is a total, summed rather than averaged.

``MetricAverager.add`` only does tensor additions, so the GPU never waits for the host between logging
steps; ``MetricAverager.pop`` reads everything with one transfer (and one all-reduce across ranks).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from leanbert.atomic import write_text_atomically
from leanbert.train.distributed import DistEnv, all_reduce_sum

NO_WEIGHTS: Mapping[str, str] = {}


def is_count(name: str, weights: Mapping[str, str] = NO_WEIGHTS) -> bool:
    """Counts are summed, not averaged: every ``*_count`` and every count a mean is weighted by."""
    return name.endswith("_count") or name in weights.values()


def weight_key(name: str, weights: Mapping[str, str] = NO_WEIGHTS) -> str | None:
    """The count a mean metric is weighted by, or None for a plain (unweighted) mean."""
    if name in weights:
        return weights[name]
    group, sep, _ = name.partition("_")
    return f"{group}_count" if sep else None


class MetricAverager:
    """Running sums of scalar metrics over a logging interval, combined by the naming rule above with the
    objective's ``weights``: counts are summed; a mean with a count (``mlm_accuracy`` over ``mlm_count``) is
    weighted by it, so the logged value is the exact interval-level mean; anything else (``loss``,
    ``grad_norm``) is a plain mean over the values added.

    Every rank must add the same keys (metric names may not depend on the data): ``pop`` all-reduces one
    vector of numerators and denominators.
    """

    def __init__(self, device: torch.device, weights: Mapping[str, str] | None = None):
        self.device = device
        self.weights = dict(weights or {})
        self.num: dict[str, torch.Tensor] = {}
        self.den: dict[str, torch.Tensor] = {}

    @property
    def empty(self) -> bool:
        return not self.num

    def _tensor(self, value: Any) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            value = value.detach().to(torch.float64 if self.device.type == "cpu" else torch.float32).reshape(())
            return value.to(self.device, non_blocking=True) if value.device != self.device else value
        return torch.tensor(float(value), device=self.device)

    def add(self, metrics: dict[str, Any]) -> None:
        values = {k: self._tensor(v) for k, v in metrics.items()}
        for key, value in values.items():
            if is_count(key, self.weights):
                num, den = value, torch.ones_like(value)  # den unused: counts are totals
            else:
                wkey = weight_key(key, self.weights)
                weight = values.get(wkey) if wkey is not None else None
                num, den = (value * weight, weight) if weight is not None else (value, torch.ones_like(value))
            self.num[key] = self.num[key] + num if key in self.num else num.clone()
            self.den[key] = self.den[key] + den if key in self.den else den.clone()

    def pop(self, env: DistEnv | None = None) -> dict[str, float]:
        if not self.num:
            return {}
        keys = sorted(self.num)
        vector = torch.stack([self.num[k] for k in keys] + [self.den[k] for k in keys])  # (2K,)
        if env is not None:
            vector = all_reduce_sum(vector, env)
        values = vector.tolist()  # the one host sync per logging interval
        nums, dens = values[:len(keys)], values[len(keys):]
        self.num, self.den = {}, {}
        return {k: (n if is_count(k, self.weights) else (n / d if d else 0.0))
                for k, n, d in zip(keys, nums, dens)}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep the line parseable
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The complete lines of a ``metrics.jsonl`` (none when it does not exist; a line cut by a kill is
    skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


class MetricsWriter:
    """Appends one JSON object per logged step to ``metrics.jsonl`` (rank 0 only); optional TensorBoard."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = False):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("leanbert: train.tensorboard=true but the tensorboard package is not installed "
                      "(pip install tensorboard); writing metrics.jsonl only", file=sys.stderr)
            else:
                self.tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (a resumed run re-logs the steps after its checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except ValueError:
                continue  # a line cut by a kill
        write_text_atomically(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({k: _json_value(v) for k, v in record.items()}) + "\n")
        if self.tb is not None:
            step = record["step"]
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
