"""Shared fixtures for the deployment tests: a tiny BERT fine-tuned on SST-2 for a few steps (real sentences,
its own WordPiece tokenizer), as a `leanbert finetune` OUT_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from leanbert.finetune.run import finetune
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.presets import model_config
from leanbert.tasks.sequence_data import load_task_data

TRAIN_ROWS = 600


@pytest.fixture(scope="session")
def sst2_dir(tmp_path_factory, shared_data) -> Path:
    """A GLUE-layout SST-2 folder: the first TRAIN_ROWS training rows and the real dev set."""
    folder = tmp_path_factory.mktemp("glue") / "SST-2"
    folder.mkdir()
    src = Path(shared_data) / "glue" / "SST-2"
    lines = (src / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "train.tsv").write_text("".join(lines[: TRAIN_ROWS + 1]), encoding="utf-8")
    (folder / "dev.tsv").write_text((src / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, sst2_dir) -> Path:
    from leanbert.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tok")
    rows = (sst2_dir / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    (root / "text.txt").write_text("".join(r.split("\t")[0] + "\n" for r in rows), encoding="utf-8")
    train_tokenizer([str(root / "text.txt")], root / "tok", vocab_size=800, lowercase=True)
    return root / "tok"


@pytest.fixture(scope="session")
def sst2_finetuned(tmp_path_factory, sst2_dir, tokenizer_dir) -> Path:
    """A finetune OUT_DIR of a 2-layer hidden-32 BERT trained for 80 steps on SST-2."""
    from tokenizers import Tokenizer

    root = tmp_path_factory.mktemp("ft")
    vocab = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).get_vocab_size()
    config = model_config("bert-tiny", vocab_size=vocab, hidden_size=32, num_heads=2, intermediate_size=64,
                          num_layers=2, max_positions=128, heads=["mlm"])
    torch.manual_seed(0)
    source = save_model(LeanBertModel(config), root / "model", tokenizer_dir=tokenizer_dir)
    task = load_task_data("sst2", data=sst2_dir)
    out = root / "sst2"
    finetune(source, task, out, ["train.max_steps=80", "train.batch_size=16", "train.lr=3e-3",
                                 "data.max_seq_len=64"], progress=False, log=lambda *_: None)
    return out
