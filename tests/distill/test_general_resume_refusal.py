"""General distillation writes its run files (config.yaml, marker) only once a resume is known valid: a
--resume whose checkpoint cannot be restored is refused in one line and leaves the run byte for byte."""

from __future__ import annotations

import random

import torch

from helpers import tiny_config
from leanbert.cli import main
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model

WORDS = "the a film movie good bad plot actor scene story long short funny dull great poor music end".split()


def test_a_failed_resume_leaves_the_run_as_it_was(tmp_path, capsys):
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range(400)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = train_tokenizer([str(tmp_path / "corpus.txt")], tmp_path / "tok", vocab_size=80, lowercase=True)
    prepare_dataset([str(tmp_path / "corpus.txt")], tmp_path / "tok", tmp_path / "data", valid_fraction=0.0,
                    progress=False)
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["mlm"])), tmp_path / "teacher",
               tokenizer_dir=tmp_path / "tok")
    run = tmp_path / "run"
    args = ["distill", "--stage", "general", "--teacher", str(tmp_path / "teacher"), "--data",
            str(tmp_path / "data"), "--out", str(run), "--quiet", "student.preset=bert-tiny", "model.hidden_size=32",
            "model.num_heads=2", "model.intermediate_size=48", "data.seq_len=16", "train.batch_size=4",
            "train.checkpoint_every=2", "train.warmup_steps=0", "data.valid_split=''"]
    assert main([*args, "train.max_steps=2"]) == 0
    weights = run / "checkpoints" / "step-2" / "objective.safetensors"
    damaged = bytearray(weights.read_bytes())
    damaged[8:40] = b"x" * 32  # same size (a complete checkpoint), unreadable header
    weights.write_bytes(bytes(damaged))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([*args, "--resume", "train.max_steps=4", "train.log_every=1"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("leanbert distill: error: ") and "objective.safetensors" in last, last
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
