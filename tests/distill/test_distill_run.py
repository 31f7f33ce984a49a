"""``leanbert distill`` end to end on tiny models: the general stage (run directory, config.yaml with the expanded
matches, exact resume, the student saved with the tokenizer), the task stage (finetune's OUT_DIR plus the
teacher's metrics and the ratio; the model exports to *ForSequenceClassification), --print-config, and bad
input reported in one line with exit status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from helpers import shared_data_dir
from leanbert.cli import main
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.outdir import read_marker

SHARED = shared_data_dir() or Path("shared-data-not-found")
STUDENT = ["student.preset=bert-tiny", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
           "model.num_layers=2"]
GENERAL = STUDENT + ["data.seq_len=32", "train.batch_size=8", "train.log_every=1", "train.device=cpu",
                     "train.eval_every=3", "train.eval_batches=2", "train.checkpoint_every=3",
                     "train.schedule=constant", "train.warmup_steps=0", "train.lr=1e-3"]
TASK = STUDENT + ["data.max_train_examples=48", "data.max_seq_len=32", "train.batch_size=16",
                  "distill.intermediate_epochs=1", "distill.prediction_epochs=2", "distill.prediction_lr=1e-3",
                  "train.device=cpu"]


def write_tokenizer(root: Path, lines: int, vocab: int) -> Path:
    text = root / f"text-{lines}.txt"
    source = (SHARED / "corpus" / "movie-reviews.txt").read_text(encoding="utf-8").splitlines()[:lines]
    text.write_text("\n".join(source) + "\n", encoding="utf-8")
    out = root / f"tok-{lines}-{vocab}"
    train_tokenizer([str(text)], out, vocab_size=vocab, lowercase=True)
    return out


def save_tiny(root: Path, name: str, tokenizer: Path, heads: list[str], seed: int, **fields) -> Path:
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(tokenizer / "tokenizer.json")).get_vocab_size()
    base = dict(vocab_size=vocab, hidden_size=48, num_layers=4, num_heads=4, intermediate_size=64,
                max_positions=64, heads=heads)
    torch.manual_seed(seed)
    return save_model(LeanBertModel(ModelConfig(**{**base, **fields})), root / name, tokenizer_dir=tokenizer)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tokenizer, a prepared corpus, a pretrained-style teacher, a task teacher and a small SST-2 slice."""
    root = tmp_path_factory.mktemp("distill")
    tokenizer = write_tokenizer(root, 600, 600)
    corpus = root / "corpus.txt"
    corpus.write_text((root / "text-600.txt").read_text(encoding="utf-8"), encoding="utf-8")
    data = root / "data"
    prepare_dataset([str(corpus)], tokenizer, data, valid_fraction=0.1, progress=False)
    glue = root / "glue" / "SST-2"
    glue.mkdir(parents=True)
    rows = (SHARED / "glue" / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (glue / "train.tsv").write_text("".join(rows[:101]), encoding="utf-8")
    (glue / "dev.tsv").write_text("".join(rows[:1] + rows[101:165]), encoding="utf-8")
    return {"root": root, "tokenizer": tokenizer, "data": data, "glue": glue.parent,
            "teacher": save_tiny(root, "teacher", tokenizer, ["mlm"], seed=1),
            "task_teacher": save_tiny(root, "task-teacher", tokenizer, ["classifier"], seed=2)}


def losses(run: Path) -> list[tuple[int, float]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(d["step"], d["loss"]) for d in lines if "loss" in d]


def test_general_stage_writes_a_run_and_resumes_exactly(world, tmp_path, capsys):
    full = tmp_path / "full"
    args = ["distill", "--stage", "general", "--teacher", str(world["teacher"]), "--data", str(world["data"]),
            "--quiet"]
    assert main(args + ["--out", str(full), *GENERAL, "train.max_steps=6"]) == 0
    config = yaml.safe_load((full / "config.yaml").read_text())
    assert config["teacher"] == str(world["teacher"]) and config["data"]["masking"] == "none"
    assert config["distill"]["matches"] == [  # uniform 4 -> 2: g(m) = 2m, attention + hidden
        {"student": 1, "teacher": 2, "feature": "attention", "loss": "mse", "weight": 1.0},
        {"student": 1, "teacher": 2, "feature": "hidden", "loss": "mse", "weight": 1.0},
        {"student": 2, "teacher": 4, "feature": "attention", "loss": "mse", "weight": 1.0},
        {"student": 2, "teacher": 4, "feature": "hidden", "loss": "mse", "weight": 1.0}]
    lines = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert any("distill_attention" in d and "distill_hidden" in d for d in lines)
    assert any("val_loss" in d for d in lines)
    student = load_model(full / "model")
    assert student.config.num_layers == 2 and student.config.heads == []
    assert (full / "model" / "tokenizer.json").read_bytes() == (world["tokenizer"] / "tokenizer.json").read_bytes()

    part = tmp_path / "part"
    assert main(args + ["--out", str(part), *GENERAL, "train.max_steps=3"]) == 0
    assert main(["distill", "--stage", "general", "--out", str(part), "--resume", "--quiet",
                 "train.max_steps=6"]) == 0  # the teacher and data come from config.yaml
    assert losses(part) == losses(full) and len(losses(full)) == 6
    capsys.readouterr()


def test_general_stage_refuses_a_corpus_of_another_tokenizer(world, tmp_path, capsys):
    other = write_tokenizer(tmp_path, 300, 400)
    data = tmp_path / "other-data"
    prepare_dataset([str(tmp_path / "text-300.txt")], other, data, valid_fraction=0.1, progress=False)
    rc = main(["distill", "--stage", "general", "--teacher", str(world["teacher"]), "--data", str(data),
               "--out", str(tmp_path / "run"), "--quiet", *GENERAL, "train.max_steps=2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not the teacher's" in err
    assert not (tmp_path / "run").exists()


def test_task_stage_writes_finetunes_out_dir_with_the_teachers_metrics(world, tmp_path, capsys):
    out = tmp_path / "kd"
    rc = main(["distill", "--stage", "task", "--teacher", str(world["task_teacher"]), "--task", "sst2",
               "--data", str(world["glue"]), "--out", str(out), "--quiet", *TASK])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["teacher_metrics"]) == {"accuracy"}
    assert metrics["ratio_to_teacher"]["accuracy"] == pytest.approx(
        metrics["accuracy"] / metrics["teacher_metrics"]["accuracy"])
    assert [m["feature"] for m in metrics["distill"]["distill"]["matches"]][:3] == \
        ["embedding", "attention", "hidden"]
    assert metrics["student_parameters"] < metrics["teacher_parameters"]
    assert len((out / "predictions.tsv").read_text().splitlines()) == 65
    for step in ("intermediate", "prediction"):
        lines = (out / "runs" / "seed-0" / step / "metrics.jsonl").read_text().splitlines()
        assert lines and all("distill_" in line or "val_" in line for line in lines)
    student = load_model(out / "model")
    assert student.config.heads == ["classifier"] and student.config.num_layers == 2
    assert read_marker(out) == "distill"  # --overwrite replaces it for distill, not for finetune
    assert main(["finetune", str(world["task_teacher"]), "--task", "sst2", "--data", str(world["glue"]),
                 "--out", str(out), "--overwrite", "--quiet"]) == 2
    assert "written by `leanbert distill`" in capsys.readouterr().err

    hf = tmp_path / "hf"
    assert main(["export", str(out / "model"), str(hf)]) == 0
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(hf)
    assert type(model).__name__ == "BertForSequenceClassification"
    capsys.readouterr()


def test_task_stage_starts_from_a_hugging_face_student_with_several_seeds(world, tmp_path, capsys):
    """student.init=HF_DIR is imported once per run (the shape, then every seed's student, read it)."""
    hf = tmp_path / "student-hf"
    assert main(["export", str(world["teacher"]), str(hf)]) == 0
    out = tmp_path / "kd-hf"
    task = [key for key in TASK if key not in STUDENT]
    rc = main(["distill", "--stage", "task", "--teacher", str(world["task_teacher"]), "--task", "sst2",
               "--data", str(world["glue"]), "--out", str(out), "--quiet", *task, f"student.init={hf}",
               "train.seeds=[0,1]", "distill.intermediate_epochs=0", "distill.prediction_epochs=1"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["per_seed"]) == 2
    assert load_model(out / "model").config.num_layers == 4  # the Hugging Face student's depth


def test_print_config_shows_the_expanded_matches(world, capsys):
    rc = main(["distill", "--stage", "task", "--teacher", str(world["task_teacher"]), "--task", "sst2",
               "--data", str(world["glue"]), "--out", "unused", "--print-config", "student.init=teacher-layers",
               "student.keep_every=2", "distill.layer_map=top"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert rc == 0 and printed["task"] == "sst2"
    assert [(m["student"], m["teacher"], m["feature"]) for m in printed["distill"]["matches"]] == [
        (0, 0, "embedding"), (1, 3, "attention"), (1, 3, "hidden"), (2, 4, "attention"), (2, 4, "hidden")]


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("leanbert distill: error:"), err
    return err


def test_bad_input_is_one_line(world, tmp_path, capsys):
    task = ["distill", "--stage", "task", "--task", "sst2", "--data", str(world["glue"]), "--quiet"]
    no_weights = tmp_path / "no-weights"
    shutil.copytree(world["task_teacher"], no_weights)
    (no_weights / "model.safetensors").unlink()
    err = _one_line_error(capsys, task + ["--teacher", str(no_weights), "--out", str(tmp_path / "a"), *TASK])
    assert "model.safetensors" in err and "missing" in err

    other = save_tiny(tmp_path, "other-student", write_tokenizer(tmp_path, 300, 600), [], seed=3)
    err = _one_line_error(capsys, task + ["--teacher", str(world["task_teacher"]), "--out", str(tmp_path / "b"),
                                          f"student.init={other}", "data.max_train_examples=16",
                                          "data.max_seq_len=32"])
    assert "different tokenizer" in err and str(other) in err  # same vocabulary size, other pieces

    err = _one_line_error(capsys, task + ["--teacher", str(world["task_teacher"]), "--out", str(tmp_path / "c"),
                                          *TASK, "distill.matches=[{student: 1, teacher: 9, feature: hidden}]"])
    assert "distill.matches[0]" in err and "teacher layer 9" in err

    err = _one_line_error(capsys, task + ["--teacher", str(world["teacher"]), "--out", str(tmp_path / "d"),
                                          *TASK])
    assert "no classifier head" in err and "leanbert finetune" in err

    err = _one_line_error(capsys, task + ["--teacher", str(world["task_teacher"]), "--out", str(tmp_path / "e"),
                                          "train.lr=1e-3"])
    assert "distill.intermediate_lr" in err
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_task_stage_trains_on_unlabeled_rows_too(world, tmp_path, capsys):
    """--unlabeled (plain text and a table) joins the training rows; metrics.json and stdout give the mix."""
    rows = (SHARED / "glue" / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    plain = tmp_path / "raw.txt"
    plain.write_text("\n".join(r.split("\t")[0] for r in rows[200:230]) + "\n", encoding="utf-8")
    table = tmp_path / "more.tsv"
    table.write_text("\n".join(rows[:1] + rows[230:240]) + "\n", encoding="utf-8")
    out = tmp_path / "kd-unlabeled"
    task = [key for key in TASK if not key.startswith("distill.")]
    rc = main(["distill", "--stage", "task", "--teacher", str(world["task_teacher"]), "--task", "sst2",
               "--data", str(world["glue"]), "--out", str(out), "--quiet", "--unlabeled", str(plain),
               "--unlabeled", str(table), *task, "distill.intermediate_epochs=0", "distill.prediction_epochs=1",
               "distill.hard_label_weight=0.5", "distill.prediction_lr=1e-3", "train.log_every=1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "48 labelled + 40 unlabeled rows" in captured.out
    mix = json.loads((out / "metrics.json").read_text())["training_rows"]
    assert mix == {"labelled": 48, "unlabeled": 40, "total": 88, "unlabeled_share": round(40 / 88, 4),
                   "unlabeled_files": {str(plain): 30, str(table): 10}}
    logged = [json.loads(line) for line in (out / "runs" / "seed-0" / "prediction" / "metrics.jsonl")
              .read_text().splitlines()]
    assert sum(1 for d in logged if "distill_prediction" in d) == 6  # ceil(88 / 16) steps of the mix
    first = json.loads((out / "metrics.json").read_text())
    assert first["teacher_cache"]["rows"] == 88 and not first["teacher_cache"]["reused"]
    assert (out / "teacher-cache" / "logits.npy").is_file()
    rerun = ["distill", "--stage", "task", "--teacher", str(world["task_teacher"]), "--task", "sst2", "--data",
             str(world["glue"]), "--out", str(out), "--quiet", "--unlabeled", str(plain), "--unlabeled", str(table),
             "--overwrite", *task, "distill.intermediate_epochs=0", "distill.prediction_epochs=1",
             "distill.hard_label_weight=0.5", "distill.prediction_lr=1e-3", "train.log_every=1"]
    assert main(rerun) == 0
    second = json.loads((out / "metrics.json").read_text())
    assert second["teacher_cache"]["reused"] and second["accuracy"] == first["accuracy"]
    assert main([*rerun, "distill.teacher_cache=false"]) == 0
    third = json.loads((out / "metrics.json").read_text())
    assert third["teacher_cache"] == {"enabled": False} and not (out / "teacher-cache").exists()
    assert third["accuracy"] == pytest.approx(first["accuracy"], abs=0.05)  # float rounding may flip a row
    capsys.readouterr()

    pair_lines = tmp_path / "pairs.txt"
    pair_lines.write_text("one\ttwo\n", encoding="utf-8")
    err = _one_line_error(capsys, ["distill", "--stage", "task", "--teacher", str(world["task_teacher"]),
                                   "--task", "sst2", "--data", str(world["glue"]), "--out", str(tmp_path / "x"),
                                   "--quiet", "--unlabeled", str(pair_lines), *TASK])
    assert "pairs.txt:1: expected one text per line" in err and not (tmp_path / "x").exists()
