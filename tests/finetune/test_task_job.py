"""The public task job with an objective other than fine-tuning's (as distillation's task stage uses it), and
fine-tuning's ``train.unpad`` switch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leanbert.batch import Batch
from leanbert.config import ConfigError
from leanbert.data.tokenizer import load_tokenizer
from leanbert.finetune.config import finetune_config, to_train_config
from leanbert.finetune.source import classifier_config
from leanbert.finetune.task_job import TaskJob, encode_task
from leanbert.jobs import JobSpec, run_job
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model
from leanbert.objectives.base import Objective, Output
from leanbert.presets import model_config
from leanbert.tasks.recipe import Recipe
from leanbert.tasks.sequence import predict
from leanbert.tasks.sequence_data import load_task_data

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "cast", "the"]


class ScaledLogits(Objective):
    """Cross-entropy on the student's logits times a learned scale: a network to score and save (``student``)
    plus a parameter outside it, like a distillation objective's projections."""

    def __init__(self, student: LeanBertModel):
        super().__init__()
        self.student = student
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, batch: Batch) -> Output:
        logits = self.student(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits  # (B, C)
        loss = F.cross_entropy(logits.float() * self.log_scale.exp(), batch.class_labels)
        return Output(loss, {"task_loss": loss.detach()})

    def models(self) -> dict[str, nn.Module]:
        return {"student": self.student}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(train.jsonl, dev.jsonl, tokenizer dir): positive words -> "pos", negative ones -> "neg"."""
    from leanbert.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for name, n in (("train.jsonl", 96), ("dev.jsonl", 24)):
        with open(root / name, "w", encoding="utf-8") as f:
            for _ in range(n):
                words = list(rng.choice(WORDS, rng.integers(1, 11)))  # lengths vary: batches carry padding
                positive = sum(w in WORDS[:3] for w in words) >= sum(w in WORDS[3:6] for w in words)
                text, label = " ".join(words), "pos" if positive else "neg"
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    (root / "text.txt").write_text(" ".join(WORDS) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "text.txt")], root / "tok", vocab_size=60, lowercase=True)
    return root / "train.jsonl", root / "dev.jsonl", root / "tok"


def test_task_job_trains_any_objective_and_writes_out_dir(tmp_path, toy):
    train, dev, tok = toy
    task = load_task_data("custom", train=train, dev=dev, text_columns="text", label_column="label")
    shape = model_config("bert-tiny", vocab_size=load_tokenizer(tok).vocab_size, hidden_size=32, num_heads=2,
                         intermediate_size=64, num_layers=2, max_positions=64, heads=["mlm"])
    config = finetune_config(task.spec.recipe, ["train.max_steps=3", "train.batch_size=16", "train.lr=1e-2",
                                                "train.warmup_ratio=0", "train.layer_decay=0.01",
                                                "data.max_seq_len=16", "train.seeds=[5]"])
    data = encode_task(task, tok, config.data, shape)
    job = TaskJob(data, config, progress=False, log=lambda *_: None)
    kept: dict[str, nn.Module] = {}

    def run_seed(job: TaskJob, seed: int, run_dir: Path):
        torch.manual_seed(seed)
        student = LeanBertModel(classifier_config(shape, 2, None))
        kept["start"] = {k: v.clone() for k, v in student.state_dict().items()}
        kept["objective"] = ScaledLogits(student)
        return job.train(kept["objective"], student, seed, run_dir)

    out = tmp_path / "out"
    result = run_job(JobSpec("finetune", out, "published"),
                     lambda runner: job.run(runner.publish, run_seed, tokenizer_dir=tok, describe={"teacher": "toy"}))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"] == "toy" and metrics["seeds"] == [5] and metrics == result.metrics
    assert metrics["metric_names"] == ["accuracy", "f1", "mcc"] and metrics["num_dev"] == {"dev": 24}
    assert (out / "runs" / "seed-5" / "metrics.jsonl").is_file()
    # the saved model is the trained student and reproduces predictions.tsv
    saved = load_model(out / "model")
    trained = kept["objective"].student.state_dict()
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(value, trained[name], rtol=0, atol=0)
    rows = [line.split("\t") for line in (out / "predictions.tsv").read_text().splitlines()]
    preds = predict(saved, data.dev["dev"], data.collator, 8, regression=False)
    assert [r[1] for r in rows[1:]] == [task.spec.label_name(p) for p in preds]
    # layer decay reached the student's parameters under their prefix; the objective's own kept the full rate
    moved_scale = float(kept["objective"].log_scale.detach().abs())
    emb = "encoder.embeddings.word_embeddings.weight"
    moved_emb = float((trained[emb] - kept["start"][emb]).abs().max())
    assert moved_scale > 1e-3 and moved_emb < 1e-4 * moved_scale


def test_unpad_setting_reaches_the_train_config():
    config = finetune_config(Recipe(), ["train.unpad=false"])
    assert config.train.unpad is False and to_train_config(config, 64, seed=0).unpad is False
    assert to_train_config(finetune_config(Recipe()), 64, seed=0).unpad is True
    with pytest.raises(ConfigError, match="train.unpad"):
        finetune_config(Recipe(), ["train.unpad=3"])


def test_finetune_without_unpadding_predicts_the_same(tmp_path, toy):
    from leanbert.finetune.run import finetune
    from leanbert.model_dir import save_model

    train, dev, tok = toy
    torch.manual_seed(0)
    shape = model_config("bert-tiny", vocab_size=load_tokenizer(tok).vocab_size, hidden_size=32, num_heads=2,
                         intermediate_size=64, num_layers=2, max_positions=64, heads=["mlm"])
    source = LeanBertModel(shape)
    save_model(source, tmp_path / "source", tokenizer_dir=tok)
    task = load_task_data("custom", train=train, dev=dev, text_columns="text", label_column="label")
    settings = ["train.max_steps=4", "train.batch_size=16", "data.max_seq_len=16", "train.dropout=0"]
    runs = {}  # lengths of 1 to 10 words fill the batches well below the unpadding threshold
    for unpad in ("true", "false"):
        finetune(tmp_path / "source", task, tmp_path / unpad, [*settings, f"train.unpad={unpad}"],
                 progress=False, log=lambda *_: None)
        runs[unpad] = load_model(tmp_path / unpad / "model").state_dict()
    for name, value in runs["true"].items():  # the same training, up to summation order
        torch.testing.assert_close(runs["false"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert json.loads((tmp_path / "false" / "metrics.json").read_text())["config"]["train"]["unpad"] is False
