"""The output-directory policy (leanbert.outdir) and the data-loss cases of issue 11 that it closes.

Every refused case checks the same three things: exit status 2, one line on stderr naming the path, and the
files that were there before byte-identical afterwards.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from helpers import tiny_config
from leanbert.atomic import write_dir_atomically
from leanbert.cli import main
from leanbert.errors import UserError
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.outdir import MARKER, check_out_dir, check_out_file, publish_dir, read_marker, write_marker

CORPUS = "the cat sat on the mat\nthe dog sat on the log\n\na cat and a dog met on a mat\n" * 20


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and directory under ``root`` (and root's siblings' names): path -> bytes (None for dirs)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return out


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture()
def model_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(LeanBertModel(tiny_config(heads=["mlm"])), tmp_path / "model")


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    """A pretraining run's layout: checkpoints, metrics and model/discriminator + model/generator."""
    run = tmp_path / "run"
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(heads=["mlm"])), run / "model" / "discriminator")
    save_model(LeanBertModel(tiny_config(heads=["mlm"])), run / "model" / "generator")
    (run / "checkpoints" / "step-10").mkdir(parents=True)
    (run / "checkpoints" / "step-10" / "state.json").write_text('{"step": 10}\n')
    (run / "metrics.jsonl").write_text('{"step": 10, "loss": 5.0}\n')
    return run


# --- the policy itself --------------------------------------------------------------------------------------

def test_new_and_empty_directories_are_accepted(tmp_path):
    assert check_out_dir(tmp_path / "new", "export") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_out_dir(tmp_path / "empty", "export") == tmp_path / "empty"


def test_refusals(tmp_path, monkeypatch):
    (tmp_path / "file.txt").write_text("mine")
    with pytest.raises(UserError, match="file.txt exists and is not a directory"):
        check_out_dir(tmp_path / "file.txt", "tokenizer", overwrite=True)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists and is not empty.*--overwrite"):
        check_out_dir(user, "export")
    with pytest.raises(UserError, match=f"is not a Hugging Face export .*no {MARKER} marker"):
        check_out_dir(user, "export", overwrite=True)
    # inputs: equal, parent, child; with or without --overwrite
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    for out, reason in ((inp, "is the input"), (inp / "sub", "is the input"), (inp / "new", "is the input"),
                        (tmp_path, "contains the input")):
        with pytest.raises(UserError, match=reason):
            check_out_dir(out, "prepare", [inp], overwrite=True)
    # the current directory and its parents
    monkeypatch.chdir(inp / "sub")
    for out in (".", "..", str(inp / "sub")):
        with pytest.raises(UserError, match="current directory"):
            check_out_dir(out, "export", overwrite=True)


def test_overwrite_replaces_only_the_same_commands_output(tmp_path):
    def fill(tmp: Path) -> None:
        (tmp / "a.txt").write_text("v1")

    out = publish_dir(tmp_path / "out", "tokenizer", fill)
    assert read_marker(out) == "tokenizer" and (out / "a.txt").read_text() == "v1"
    publish_dir(out, "tokenizer", lambda tmp: (tmp / "a.txt").write_text("v2"), overwrite=True)
    assert (out / "a.txt").read_text() == "v2"
    before = snapshot(out)
    with pytest.raises(UserError, match="is not a prepared dataset .*it is a tokenizer directory"):
        publish_dir(out, "prepare", fill, overwrite=True)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left behind


# --- the data-loss cases, through the CLI ------------------------------------------------------------------

def test_export_into_the_run_or_the_model_directory_is_refused(run_dir, model_dir, capsys):
    before = snapshot(run_dir.parent)
    disc = run_dir / "model" / "discriminator"
    assert main(["export", str(disc), str(run_dir)]) == 2
    one_line_error(capsys, str(run_dir), "contains the input")
    assert main(["export", str(disc), str(run_dir), "--overwrite"]) == 2
    one_line_error(capsys, "contains the input")
    assert main(["export", str(model_dir), str(model_dir), "--overwrite"]) == 2
    one_line_error(capsys, str(model_dir), "is the input")
    assert main(["export", str(model_dir), str(model_dir / "hf")]) == 2
    one_line_error(capsys, "is the input")
    assert snapshot(run_dir.parent) == before


def test_export_into_a_users_directory_needs_an_earlier_export(model_dir, tmp_path, capsys):
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    assert main(["export", str(model_dir), str(user)]) == 2
    one_line_error(capsys, str(user), "--overwrite")
    assert main(["export", str(model_dir), str(user), "--overwrite"]) == 2
    one_line_error(capsys, str(user), "not a Hugging Face export")
    assert snapshot(tmp_path) == before
    # an earlier export is replaced with --overwrite, and only with it
    assert main(["export", str(model_dir), str(tmp_path / "hf")]) == 0
    assert read_marker(tmp_path / "hf") == "export"
    assert main(["export", str(model_dir), str(tmp_path / "hf")]) == 2
    assert main(["export", str(model_dir), str(tmp_path / "hf"), "--overwrite"]) == 0
    capsys.readouterr()
    # an export is not an import's output: import --overwrite refuses it
    hf_before = snapshot(tmp_path / "hf")
    assert main(["import", str(model_dir), str(tmp_path / "hf"), "--overwrite"]) == 2
    one_line_error(capsys, "OUT_DIR", "it is a Hugging Face export written by `leanbert export`")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ours")]) == 0
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "hf"), "--overwrite"]) == 2
    capsys.readouterr()
    assert snapshot(tmp_path / "hf") == hf_before


def test_export_to_the_current_directory_is_refused(model_dir, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["export", str(model_dir), "."]) == 2
    one_line_error(capsys, "current directory")
    assert list(work.iterdir()) == []


def test_import_onto_its_own_source_is_refused(model_dir, tmp_path, capsys):
    hf = tmp_path / "hf"
    assert main(["export", str(model_dir), str(hf)]) == 0
    (hf / "README.md").write_text("model card")
    capsys.readouterr()
    before = snapshot(hf)
    assert main(["import", str(hf), str(hf)]) == 2
    one_line_error(capsys, str(hf), "is the input")
    assert main(["import", str(hf), str(hf), "--overwrite"]) == 2
    one_line_error(capsys, "is the input")
    assert snapshot(hf) == before


def test_tokenizer_train_never_replaces_its_corpus_or_a_file(tmp_path, capsys):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "corpus.txt").write_text(CORPUS)
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    args = ["--vocab-size", "60", "--min-frequency", "1"]
    assert main(["tokenizer", "train", str(corpus_dir / "corpus.txt"), "--out", str(corpus_dir), *args]) == 2
    one_line_error(capsys, str(corpus_dir), "contains the input")
    assert main(["tokenizer", "train", str(corpus_dir), "--out", str(corpus_dir / "tok"), *args]) == 2
    one_line_error(capsys, "is the input")
    assert main(["tokenizer", "train", str(corpus_dir / "corpus.txt"), "--out", str(tmp_path / "notes.txt"),
                 "--overwrite", *args]) == 2
    one_line_error(capsys, "notes.txt exists and is not a directory")
    assert snapshot(tmp_path) == before
    # a tokenizer directory written by the command is replaced with --overwrite
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", str(corpus_dir), "--out", str(out), *args]) == 0
    assert main(["tokenizer", "train", str(corpus_dir), "--out", str(out), *args]) == 2
    one_line_error(capsys, "--overwrite")
    assert main(["tokenizer", "train", str(corpus_dir), "--out", str(out), "--overwrite", *args]) == 0
    assert read_marker(out) == "tokenizer"


# --- permissions: what is published follows the umask, the temp dir's 0700 does not leak -----------------

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_published_permissions_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_dir_atomically(tmp_path / "plain", lambda tmp: (tmp / "f.txt").write_text("x"))
        torch.manual_seed(0)
        save_model(LeanBertModel(tiny_config(heads=["mlm"])), tmp_path / "model")
        publish_dir(tmp_path / "nested", "export",
                    lambda tmp: save_model(LeanBertModel(tiny_config()), tmp / "inner"))
    finally:
        os.umask(previous)
    for root in ("plain", "model", "nested"):
        for path in [tmp_path / root, *(tmp_path / root).rglob("*")]:
            expected = (0o777 if path.is_dir() else 0o666) & ~umask
            assert stat.S_IMODE(path.stat().st_mode) == expected, (path, oct(path.stat().st_mode))


def test_demo_overwrite_never_deletes_a_users_directory(tmp_path, capsys):
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    assert main(["demo", "--tiny", "--out", str(user), "--overwrite"]) == 2
    one_line_error(capsys, str(user), "not a demo output")
    assert snapshot(tmp_path) == before


def test_single_file_outputs_never_land_in_an_input_or_another_commands_output(tmp_path, monkeypatch):

    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    write_marker(model, "finetune")
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    write_marker(data, "prepare")
    (tmp_path / "in.tsv").write_text("text\nx\n")
    (tmp_path / "link").symlink_to(model)
    refused = {
        "model/config.json": "lies inside",  # a marked output, --overwrite or not
        "model/new.tsv": "lies inside",
        "link/config.json": "lies inside",  # a symlink does not get around it
        "data/train/../new.tsv": "lies inside",
        "in.tsv": "is the input",
        "sub/../in.tsv": "is the input",
        "model": "is a directory",
    }
    for out, message in refused.items():
        with pytest.raises(UserError, match=message):
            check_out_file(out, [tmp_path / "in.tsv"], overwrite=True)
    with pytest.raises(UserError, match="lies inside the input"):
        check_out_file(data / "x.json", [data], overwrite=True)
    check_out_file(data / "rare_words.json", overwrite=True, part_of="prepare")  # its designed home
    with pytest.raises(UserError, match="lies inside"):
        check_out_file(model / "rare_words.json", overwrite=True, part_of="prepare")
    (tmp_path / "preds.tsv").write_text("old")
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        check_out_file("preds.tsv", [tmp_path / "in.tsv"])
    assert check_out_file("preds.tsv", [tmp_path / "in.tsv"], overwrite=True) == Path("preds.tsv")
    assert check_out_file("new/dir/preds.tsv", [tmp_path / "in.tsv"]) == Path("new/dir/preds.tsv")
