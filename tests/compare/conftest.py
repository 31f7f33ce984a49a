"""A tiny prepared dataset, a tiny custom classification task and tiny comparison specs (seconds per run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compare.tiny_compare import BAD, GOOD, TEXT
from leanbert.cli import main


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
