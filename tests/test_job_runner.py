"""Every job runs on the one job runner (``leanbert.jobs.run_job``), so every entry point behaves alike around its
own work. One table of entry points (pretrain, distill general, finetune, distill task, the pretraining demo),
each through the CLI, checks that:

* a run that was killed (its scratch folder and lock file left behind by a dead pid) leaves neither after the
  next start;
* a second run on the same ``--out`` is refused in one line, in the family of its layout (a run directory:
  "already holds a run; pass --resume"; a published or demo output: "already exists ... --overwrite");
* where the command resumes, ``--resume`` with a changed non-resumable setting is refused in one line.

The demo row replaces the demo's stages with a stub that writes one file: what is checked here is the runner's
part (lock, output policy, scratch), and the real stages have their own end-to-end test (test_demo.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from helpers import tiny_config
from leanbert.atomic import _host_tag
from leanbert.cli import main
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.demo import data as demo_data
from leanbert.demo import pipeline
from leanbert.errors import UserError
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.run_lock import LOCK_NAME

SMOKE = str(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml")
WORDS = "the a film movie good bad plot actor scene story long short funny dull great poor music end".split()
RUN_AGAIN = "already holds a run; pass --resume"
NOT_EMPTY = "already exists and is not empty"
CHANGED = "cannot --resume with a different experiment"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tokenizer, a corpus prepared with it, an encoder (mlm head), a classifier of the same tokenizer (the
    task teacher) and a two-label TSV task."""
    root = tmp_path_factory.mktemp("jobs")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range(300)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = train_tokenizer([str(root / "corpus.txt")], root / "tok", vocab_size=80, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.1, progress=False)
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["mlm"])), root / "encoder",
               tokenizer_dir=root / "tok")
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["classifier"], num_labels=2)),
               root / "classifier", tokenizer_dir=root / "tok")
    rows = "".join(f"{line}\t{'pos' if 'good' in line else 'neg'}\n" for line in lines[:24])
    for split in ("train", "dev"):
        (root / f"{split}.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    return {"root": root}


def _task(root: Path) -> list[str]:
    return ["--task", "custom", "--train", str(root / "train.tsv"), "--dev", str(root / "dev.tsv"),
            "--text-columns", "sentence", "--label-column", "label"]


STUDENT = ["student.preset=bert-tiny", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=48",
           "model.num_layers=1"]


@dataclass(frozen=True)
class Entry:
    name: str
    argv: Callable[[Path, Path], list[str]]  # (world root, --out) -> the command line
    layout: str  # the runner's layout: where the lock lives and which refusal family applies
    resume_change: list[str] | None = None  # --resume with a non-resumable change, where the command resumes


ENTRIES = [
    Entry("pretrain", lambda root, out: [
        "pretrain", "--config", SMOKE, f"data.path={root / 'data'}", "--out", str(out), "--no-progress",
        "train.max_steps=2", "train.warmup_steps=1", "train.checkpoint_every=1", "train.eval_every=2",
        "train.log_every=1", "data.seq_len=32"], "run_dir", ["--resume", "train.max_steps=4", "train.lr=0.5"]),
    Entry("distill-general", lambda root, out: [
        "distill", "--stage", "general", "--teacher", str(root / "encoder"), "--data", str(root / "data"),
        "--out", str(out), "--quiet", *STUDENT, "data.seq_len=16", "train.batch_size=4", "train.max_steps=2",
        "train.checkpoint_every=1", "train.warmup_steps=0", "data.valid_split=''"],
        "run_dir", ["--resume", "train.max_steps=4", "train.lr=0.5"]),
    Entry("finetune", lambda root, out: [
        "finetune", str(root / "encoder"), *_task(root), "--out", str(out), "--quiet", "train.max_steps=2",
        "train.batch_size=8", "data.max_seq_len=16"], "published"),
    Entry("distill-task", lambda root, out: [
        "distill", "--stage", "task", "--teacher", str(root / "classifier"), *_task(root), "--out", str(out),
        "--quiet", *STUDENT, "data.max_seq_len=16", "train.batch_size=8", "distill.intermediate_epochs=1",
        "distill.prediction_epochs=1"], "published"),
    Entry("demo", lambda root, out: ["demo", "--pretrain", "--tiny", "--out", str(out)], "in_place"),
]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def lock_file(entry: Entry, out: Path) -> Path:
    return out / LOCK_NAME if entry.layout == "run_dir" else out.parent / f".{out.name}.lock"


def leave_a_killed_run(entry: Entry, out: Path) -> tuple[Path, Path]:
    """What a run killed mid-way leaves: its scratch folder next to the output and its lock file (a lock file
    without a live holder: the OS dropped the lock with the process)."""
    pid = dead_pid()
    scratch = out.parent / f".{out.name}.work-{pid}.{_host_tag()}-killed"
    scratch.mkdir(parents=True)
    (scratch / "half-written.bin").write_bytes(b"x")
    lock = lock_file(entry, out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": pid, "host": "here", "command": "leanbert (killed)", "started": "-"}))
    return scratch, lock


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def stub_demo(out: Path, settings) -> dict:
    (out / "report.md").write_text("stub\n", encoding="utf-8")
    return {}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_entry_point_has_the_runners_lifecycle(entry, world, tmp_path, capsys, monkeypatch):
    if entry.name == "demo":
        try:
            demo_data.package_file(*demo_data.WIKI_FILE)
            demo_data.package_file(*demo_data.REVIEWS_FILE)
        except UserError:
            pytest.skip(f"demo data packages missing: {demo_data.INSTALL}")
        monkeypatch.setattr(pipeline, "_run", stub_demo)
    root, out = world["root"], tmp_path / "out"
    scratch, lock = leave_a_killed_run(entry, out)
    assert main(entry.argv(root, out)) == 0, capsys.readouterr().err
    assert not scratch.exists() and not lock.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no scratch, lock or temp folder of its own
    capsys.readouterr()

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(entry.argv(root, out)) == 2
    err = one_line_error(capsys)
    if entry.layout == "run_dir":
        assert RUN_AGAIN in err
    else:
        assert NOT_EMPTY in err and "--overwrite" in err
    if entry.resume_change is not None:
        assert main([*entry.argv(root, out), *entry.resume_change]) == 2
        err = one_line_error(capsys)
        assert CHANGED in err and "train.lr" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # refusals change nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
