"""Task-distillation step time with and without the teacher-output cache (distill/teacher_cache.py).

The shape of the demo: a MiniLM-sized teacher (6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522) and a
student of two of its layers, batch 32, rows of 8..64 tokens (dynamic padding). Workloads:
  prediction   step 2 (soft cross-entropy to the teacher's logits): the cache serves the logits, no teacher run
  intermediate step 1 (embedding + attention + hidden of the student's 2 layers against teacher layers 3, 6):
               the cache serves those features
Each step = forward + backward + AdamW step. The two settings alternate round by round so machine load hits
both alike; the table gives median seconds per step and the ratio. The one-off cost of the cache (one
length-sorted inference pass over the rows) is timed too, per 1,000 rows.

  OMP_NUM_THREADS=2 python benchmarks/teacher_cache_speed.py --rounds 12 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from leanbert.distill.matches import LayerMatch
from leanbert.distill.objective import PredictionTarget, TransformerDistillation
from leanbert.distill.student import copy_teacher_layers, teacher_layers_config
from leanbert.distill.teacher_cache import prepare_cache
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.tasks.encode import Collator, Features, iterate_batches

MATCHES = [LayerMatch(0, 0, "embedding"), LayerMatch(1, 3, "attention"), LayerMatch(1, 3, "hidden"),
           LayerMatch(2, 6, "attention"), LayerMatch(2, 6, "hidden")]


def make_rows(count: int, max_len: int, seed: int = 0) -> list[Features]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        length = int(rng.integers(8, max_len + 1))
        ids = rng.integers(1000, 30000, length).astype(np.int64)
        rows.append(Features(ids, np.zeros(length, dtype=np.int64), int(rng.integers(0, 2))))
    return rows


def models() -> tuple[LeanBertModel, LeanBertModel]:
    torch.manual_seed(0)
    teacher = LeanBertModel(ModelConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
                                        intermediate_size=1536, max_positions=512, heads=["classifier"],
                                        num_labels=2)).eval()
    student = LeanBertModel(teacher_layers_config(teacher.config, 3, ["classifier"], 2))
    copy_teacher_layers(student, teacher, 3)
    return teacher, student


def step_seconds(objective: TransformerDistillation, optimizer, batch) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    objective(batch).loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher, student = models()
    rows = make_rows(args.rows, args.max_len)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cache, info = prepare_cache(teacher, rows, Collator(0), args.max_len, MATCHES, 4096, Path(tmp) / "c",
                                    log=lambda _: None)
        build_s = time.perf_counter() - start
        results["cache_build_s_per_1000_rows"] = round(1000 * build_s / len(rows), 3)
        results["cache_features_mb"] = info["features_mb"]
        batches = list(iterate_batches(rows, args.batch_size, Collator(0), shuffle=True, seed=1))
        for name, matches, target in (("prediction", [], PredictionTarget(1.0, 0.5)),
                                      ("intermediate", MATCHES, None)):
            objectives = {"live teacher": TransformerDistillation(student, teacher, "t", matches, target),
                          "cached": TransformerDistillation(student, teacher, "t", matches, target, cache=cache)}
            times: dict[str, list[float]] = {k: [] for k in objectives}
            for round_ in range(args.rounds + 1):
                for label, objective in objectives.items():
                    objective.train()
                    teacher.eval()
                    params = [p for n, p in objective.named_parameters() if not n.startswith("teacher.")]
                    optimizer = torch.optim.AdamW(params, lr=1e-5)
                    seconds = step_seconds(objective, optimizer, batches[round_ % len(batches)])
                    if round_:  # the first round warms up
                        times[label].append(seconds)
            live, cached = (statistics.median(times[k]) for k in ("live teacher", "cached"))
            results[name] = {"live_s": round(live, 4), "cached_s": round(cached, 4),
                             "speedup": round(live / cached, 2)}
    results["threads"] = torch.get_num_threads()
    results["rows"], results["batch_size"], results["max_len"] = args.rows, args.batch_size, args.max_len
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
