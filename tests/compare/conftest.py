"""A tiny prepared dataset, a tiny custom classification task and tiny comparison specs (seconds per run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leanbert.cli import main

TEXT = ("the cat sat on the mat . a dog ran in the park .\nbirds sing in the morning light .\n\n"
        "rain fell on the quiet town all night .\nthe river ran fast under the old bridge .\n\n") * 60
GOOD = ["the cat sat on the mat", "birds sing in the morning light", "a dog ran in the park"]
BAD = ["rain fell on the quiet town", "the river ran fast", "all night under the old bridge"]

# a 2-layer, hidden-32 encoder on 32-token sequences: a step takes milliseconds
TINY_BASE = {"model.preset": "bert-mini", "model.hidden_size": 32, "model.num_layers": 2, "model.num_heads": 2,
             "model.intermediate_size": 64, "model.max_positions": 64, "data.seq_len": 32,
             "train.batch_size": 4, "train.warmup_steps": 0, "train.log_every": 2, "train.eval_batches": 2,
             "train.lr": 1e-3}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare-data")
    (root / "corpus.txt").write_text(TEXT, encoding="utf-8")
    assert main(["tokenizer", "train", str(root / "corpus.txt"), "--out", str(root / "tok"), "--vocab-size", "80",
                 "--min-frequency", "1"]) == 0
    assert main(["prepare", str(root / "corpus.txt"), "--tokenizer", str(root / "tok"), "--out",
                 str(root / "data"), "--valid-fraction", "0.2", "--quiet"]) == 0
    return root / "data"


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory) -> dict[str, str]:
    """A custom sentiment-like task (train.tsv, dev.tsv) whose words all come from the corpus."""
    root = tmp_path_factory.mktemp("compare-task")
    for split, repeat in (("train", 8), ("dev", 3)):
        rows = ["sentence\tlabel"] + [f"{s}\t1" for s in GOOD * repeat] + [f"{s}\t0" for s in BAD * repeat]
        (root / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"task": "custom", "train": str(root / "train.tsv"), "dev": str(root / "dev.tsv"),
            "text_columns": "sentence", "label_column": "label"}


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path
