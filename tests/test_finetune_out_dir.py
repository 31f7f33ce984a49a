"""`leanbert finetune --out`: never the model's own run directory (with or without --overwrite), --overwrite
only over an earlier fine-tuning output, and one process per OUT_DIR at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers import tiny_config
from leanbert.cli import main
from leanbert.data.tokenizer import train_tokenizer
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.outdir import read_marker
from test_outdir import one_line_error, snapshot

ROWS = [("a good film", "pos"), ("a bad film", "neg"), ("great fun", "pos"), ("dull and slow", "neg")] * 4


@pytest.fixture(scope="module")
def task_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("task")
    text = "text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in ROWS)
    (root / "train.tsv").write_text(text, encoding="utf-8")
    (root / "dev.tsv").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, task_files) -> Path:
    """A pretraining run's layout with an ELECTRA-style model/discriminator that has a tokenizer."""
    root = tmp_path_factory.mktemp("pretrain")
    (root / "text.txt").write_text("".join(t + "\n" for t, _ in ROWS), encoding="utf-8")
    info = train_tokenizer([str(root / "text.txt")], root / "tok", vocab_size=60, min_frequency=1)
    run = root / "run"
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["mlm"])), run / "model" / "discriminator",
               tokenizer_dir=root / "tok")
    (run / "checkpoints" / "step-2").mkdir(parents=True)
    (run / "checkpoints" / "step-2" / "state.json").write_text('{"step": 2}\n')
    (run / "metrics.jsonl").write_text('{"step": 2, "loss": 4.0}\n')
    return run


def finetune_args(model: Path, task: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", str(model), "--task", "custom", "--train", str(task / "train.tsv"), "--dev",
            str(task / "dev.tsv"), "--text-columns", "text", "--label-column", "label", "--out", str(out),
            "--quiet", "train.epochs=1", "train.batch_size=4", "data.max_seq_len=16", *extra]


def test_overwrite_never_deletes_the_models_run_directory(run_dir, task_files, capsys):
    before = snapshot(run_dir)
    for model in (run_dir, run_dir / "model" / "discriminator"):
        assert main(finetune_args(model, task_files, run_dir, "--overwrite")) == 2
        one_line_error(capsys, str(run_dir), "input")
    assert main(finetune_args(run_dir, task_files, task_files, "--overwrite")) == 2
    one_line_error(capsys, "contains the input")
    assert snapshot(run_dir) == before


def test_overwrite_replaces_only_an_earlier_finetune_output(run_dir, task_files, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(finetune_args(run_dir, task_files, out)) == 0
    assert read_marker(out) == "finetune" and (out / "metrics.json").is_file()
    assert main(finetune_args(run_dir, task_files, out)) == 2
    one_line_error(capsys, "--overwrite")
    assert main(finetune_args(run_dir, task_files, out, "--overwrite")) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft"]  # no temp or lock file left behind


HOLDER = textwrap.dedent("""
    import sys
    from leanbert.run_lock import lock_output
    lock = lock_output(sys.argv[1], command="leanbert finetune --out first")
    print("locked", flush=True)
    sys.stdin.read()
""")


def test_a_second_process_on_the_same_out_fails_at_once(run_dir, task_files, tmp_path, capsys):
    out = tmp_path / "ft"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(finetune_args(run_dir, task_files, out)) == 2
        one_line_error(capsys, f"pid {holder.pid}", "leanbert finetune --out first")
        assert not out.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
