"""Tiny comparison pieces shared by the compare tests: a corpus, a task's sentences, a tiny base, spec writing."""

from __future__ import annotations

from pathlib import Path

import yaml

TEXT = ("the cat sat on the mat . a dog ran in the park .\nbirds sing in the morning light .\n\n"
        "rain fell on the quiet town all night .\nthe river ran fast under the old bridge .\n\n") * 60
GOOD = ["the cat sat on the mat", "birds sing in the morning light", "a dog ran in the park"]
BAD = ["rain fell on the quiet town", "the river ran fast", "all night under the old bridge"]

# a 2-layer, hidden-32 encoder on 32-token sequences: a step takes milliseconds
TINY_BASE = {"model.preset": "bert-mini", "model.hidden_size": 32, "model.num_layers": 2, "model.num_heads": 2,
             "model.intermediate_size": 64, "model.max_positions": 64, "data.seq_len": 32,
             "train.batch_size": 4, "train.warmup_steps": 0, "train.log_every": 2, "train.eval_batches": 2,
             "train.lr": 1e-3}


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path
