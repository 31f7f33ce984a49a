"""Training metrics: averaged on the device over a logging interval, written as ``metrics.jsonl`` lines
(and optionally TensorBoard events).

``MetricAverager.add`` only does tensor additions, so the GPU never waits for the host between logging
steps; ``MetricAverager.pop`` reads everything with one transfer (and one all-reduce across ranks).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from leanbert.train.distributed import DistEnv, all_reduce_mean


class MetricAverager:
    """Per-key running sums of scalar metrics; ``pop`` returns the means (averaged over ranks) and resets.

    Every rank must add the same keys (the objective's metric names may not depend on the data), since the
    cross-rank mean reduces one vector with one entry per key.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float().reshape(())
                value = value.to(self.device, non_blocking=True) if value.device != self.device else value
            else:
                value = torch.tensor(float(value), device=self.device)
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
            self.counts[key] = self.counts.get(key, 0) + 1

    def pop(self, env: DistEnv | None = None) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        means = torch.stack([self.sums[k] / self.counts[k] for k in keys])  # (K,)
        if env is not None:
            means = all_reduce_mean(means, env)
        values = means.tolist()  # the one host sync per logging interval
        self.sums, self.counts = {}, {}
        return dict(zip(keys, values))


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep the line parseable
    return value


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
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)

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
