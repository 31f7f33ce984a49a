"""Pretraining run directories: one process at a time (a second one fails at once naming the holder), never
an input or a non-empty foreign directory, and --resume that neither duplicates metrics nor shortens a run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leanbert.cli import main
from leanbert.outdir import read_marker

SMOKE = str(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml")
TEXT = ("the cat sat on the mat . a dog ran in the park .\nbirds sing in the morning light .\n\n"
        "rain fell on the quiet town all night .\nthe river ran fast under the old bridge .\n\n") * 60

HOLDER = textwrap.dedent("""
    import sys
    from leanbert.run_lock import lock_run_dir
    lock = lock_run_dir(sys.argv[1], command="leanbert pretrain --out first")
    print("locked", flush=True)
    sys.stdin.read()
""")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain-data")
    (root / "corpus.txt").write_text(TEXT, encoding="utf-8")
    assert main(["tokenizer", "train", str(root / "corpus.txt"), "--out", str(root / "tok"), "--vocab-size", "80",
                 "--min-frequency", "1"]) == 0
    assert main(["prepare", str(root / "corpus.txt"), "--tokenizer", str(root / "tok"), "--out",
                 str(root / "data"), "--valid-fraction", "0.2", "--quiet"]) == 0
    return root / "data"


def pretrain_args(dataset: Path, run: Path, *extra: str) -> list[str]:
    return ["pretrain", "--config", SMOKE, f"data.path={dataset}", "--out", str(run), "--no-progress",
            "train.max_steps=4", "train.warmup_steps=1", "train.checkpoint_every=2", "train.eval_every=2", "train.log_every=2", *extra]


def test_a_second_process_on_the_same_run_fails_at_once(tmp_path, dataset, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(pretrain_args(dataset, run)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {holder.pid}" in err and "leanbert pretrain --out first" in err
        assert sorted(p.name for p in run.iterdir()) == [".leanbert-lock"]  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_run_dir_policy(tmp_path, dataset, capsys):
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    assert main(pretrain_args(dataset, user)) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(pretrain_args(dataset, dataset / "run")) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(pretrain_args(dataset, user, "--resume")) == 0  # a run from before markers: no marker at all
    capsys.readouterr()
    exported = tmp_path / "tok-like"
    exported.mkdir()
    (exported / ".leanbert-output.json").write_text('{"kind": "tokenizer"}\n')
    (exported / "tokenizer.json").write_text("{}")
    assert main(pretrain_args(dataset, exported, "--resume")) == 2
    assert "is not a pretraining run" in capsys.readouterr().err
    assert (exported / "tokenizer.json").read_text() == "{}"


def test_resume_neither_duplicates_metrics_nor_shortens_a_run(tmp_path, dataset, capsys):
    run = tmp_path / "run"
    assert main(pretrain_args(dataset, run)) == 0
    assert read_marker(run) == "pretrain"
    metrics = (run / "metrics.jsonl").read_bytes()
    config = (run / "config.yaml").read_bytes()
    capsys.readouterr()
    assert main(pretrain_args(dataset, run, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already finished (4 of train.max_steps=4 steps" in err
    assert main(pretrain_args(dataset, run, "--resume", "train.max_steps=2")) == 2
    assert "train.max_steps=2 is below the 4 steps" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_bytes() == metrics and (run / "config.yaml").read_bytes() == config
    # a longer budget continues the run, and the step-4 lines are not repeated
    assert main(pretrain_args(dataset, run, "--resume", "train.max_steps=6")) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = [(r["step"], "loss" in r) for r in records]  # a training line and/or a validation-only line
    assert len(kinds) == len(set(kinds)) and records[-1]["step"] == 6
    assert [r["step"] for r in records] == sorted(r["step"] for r in records)


def test_a_seed_past_32_bits_trains(tmp_path, dataset):
    """NumPy's global generator takes 32 bits; every seed train.seed accepts must still run (was a traceback)."""
    assert main(pretrain_args(dataset, tmp_path / "run", f"train.seed={2**63 - 1}", "train.max_steps=2")) == 0
    assert (tmp_path / "run" / "model").is_dir()


def test_a_resume_that_fails_leaves_the_run_as_it_was(tmp_path, dataset, capsys):
    """config.yaml (and everything else) is written only once the checkpoint is restored (train_loop's on_ready)."""
    run = tmp_path / "run"
    assert main(pretrain_args(dataset, run)) == 0
    newest = sorted((run / "checkpoints").iterdir())[-1]
    weights = newest / "objective.safetensors"
    damaged = bytearray(weights.read_bytes())
    damaged[8:40] = b"x" * 32  # same size (so it counts as complete), unreadable header
    weights.write_bytes(bytes(damaged))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(pretrain_args(dataset, run, "--resume", "train.max_steps=6", "train.log_every=1")) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("leanbert pretrain: error: ") and "objective.safetensors" in last, last
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # config.yaml still says max_steps 4 and log_every 2
