"""Batch-1 CPU latency of classifiers on real sentences, as a user who serves one request at a time sees it.

Every model runs the same sentences (real lengths, no padding), one at a time; the models alternate
sentence by sentence so that a burst of load from elsewhere on the machine hits them all alike. The figure is
the median over the timed calls (the first pass warms up and is not counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from leanbert.export.onnx import ONNX_NAME, OnnxRunner
from leanbert.model_dir import load_model
from leanbert.tasks.encode import Features

# one encoded sentence -> its (1, C) logits
RunOne = Callable[[Features], object]


def torch_runner(model_dir: Path) -> RunOne:
    """A leanbert model directory as a batch-1 callable (eval mode, inference mode)."""
    model = load_model(model_dir, map_location="cpu").eval()

    def run(features: Features):
        ids = torch.from_numpy(features.input_ids)[None]  # (1, T)
        with torch.inference_mode():
            return model(ids, torch.ones_like(ids), torch.from_numpy(features.token_type_ids)[None]).logits

    return run


def onnx_runner(onnx_dir: Path, threads: int) -> RunOne:
    """An ONNX directory from ``leanbert export --format onnx`` as a batch-1 callable."""
    runner = OnnxRunner(onnx_dir / ONNX_NAME, threads=threads)

    def run(features: Features):
        ids = features.input_ids[None]  # (1, T)
        return runner.run(ids, np.ones_like(ids), features.token_type_ids[None])["logits"]

    return run


def batch1_latency_ms(runners: dict[str, RunOne], sentences: Sequence[Features], rounds: int = 3
                      ) -> dict[str, float]:
    """Median milliseconds per sentence for each runner; ``rounds`` passes over ``sentences`` after a
    warm-up pass, the runners alternating sentence by sentence."""
    timings: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(rounds + 1):
        for features in sentences:
            for name, run in runners.items():
                start = time.perf_counter()
                run(features)
                if round_:  # round 0 warms up (allocator, onnxruntime's first-run planning)
                    timings[name].append(time.perf_counter() - start)
    return {name: 1000 * float(np.median(values)) for name, values in timings.items()}
