"""The multiple-choice task type: ``leanbert finetune MODEL --task multiple-choice --train FILE --dev FILE``.

Files: JSONL in leanbert's ``{context, question, options, label}`` layout or the SWAG / HellaSwag / Social IQa
ones (choice_files.py). Each option is one ``[CLS] context [SEP] question option [SEP]`` row, the context
truncated first; examples with fewer options than others in a batch have the missing ones masked
(choice_encode.py). Head ``choice`` (one score per row, transformers' *ForMultipleChoice); loss cross-entropy
of the softmax over each example's options. Metric ``accuracy``. OUT_DIR gets ``predictions.jsonl``, one
``{"index", "label", "probabilities"}`` per dev row (index: the row's position; label: the predicted option,
0-based; probabilities: the softmax over that row's options). Distillation: TinyBERT's prediction-layer
loss on the per-option distribution (missing options excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from leanbert.atomic import write_text_atomically
from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.errors import UserError
from leanbert.model.config import ModelConfig
from leanbert.objectives.base import Output
from leanbert.tasks.base import EncodedTask, TaskRequest, TaskType, register_task_type, require_train_dev
from leanbert.tasks.choice_encode import ChoiceCollator, ChoiceEncoder, ChoiceFeatures, masked_scores
from leanbert.tasks.choice_files import read_choices
from leanbert.tasks.choice_predict import CHOICE_PREDICT, prediction_rows
from leanbert.tasks.glue import TaskData
from leanbert.tasks.recipe import FinetuneDataConfig, Recipe
from leanbert.tasks.row_outputs import row_outputs
from leanbert.tasks.sequence import check_model_fit


@dataclass(frozen=True)
class ChoiceSpec:
    name: str = "multiple-choice"
    recipe: Recipe = field(default_factory=lambda: Recipe(lr=5e-5, epochs=3, batch_size=16, max_seq_len=128))
    main_metric: str = "accuracy"
    metric_names: tuple[str, ...] = ("accuracy",)
    num_labels: int = 1  # one score per option row


def load(request: TaskRequest) -> TaskData:
    require_train_dev(request, "JSONL with a context and its options", "its fields")
    return TaskData(ChoiceSpec(), read_choices(request.train), {"dev": read_choices(request.dev)},
                      kind="choice", files=(str(request.train), str(request.dev)))


def check_vocab(features: list[ChoiceFeatures], tokenizer_dir: Path, model: ModelConfig) -> None:
    too_big = max((int(ids.max()) for f in features for ids in f.input_ids), default=0)
    if too_big >= model.vocab_size:
        raise UserError(f"{tokenizer_dir}: the tokenizer produces id {too_big} but the model's vocab_size is "
                        f"{model.vocab_size}; the tokenizer does not belong to this model")


def collator_for(encoder: ChoiceEncoder) -> ChoiceCollator:
    return ChoiceCollator(encoder.pad_id, encoder.cls_id, encoder.sep_id)


def encode(task: TaskData, tokenizer_dir: Path, data: FinetuneDataConfig, model: ModelConfig,
           progress: bool = False) -> EncodedTask:
    check_model_fit(data.max_seq_len, model)
    encoder = ChoiceEncoder.from_dir(tokenizer_dir, data.max_seq_len)
    rows = task.train[: data.max_train_examples] if data.max_train_examples else task.train
    train = encoder.encode_choices(rows)
    dev = {split: encoder.encode_choices(examples) for split, examples in task.dev.items()}
    check_vocab(train, tokenizer_dir, model)
    return EncodedTask(task.spec, train, dev, collator_for(encoder), data.max_seq_len, kind="choice")


def loss(out: Any, batch: Batch) -> Output:
    scores = masked_scores(out.logits, batch.targets["choice_mask"])  # (B, C)
    labels = batch.targets["choice_labels"]  # (B,)
    value = F.cross_entropy(scores, labels)
    with torch.no_grad():
        accuracy = (scores.argmax(-1) == labels).float().mean()
    count = scores.new_full((), float(scores.shape[0]), dtype=torch.float32)
    return Output(value, {"task_loss": value.detach(), "task_accuracy": accuracy, "task_count": count})


def distill_loss(student: Any, teacher: Any, batch: Batch, temperature: float, hard_weight: float
                 ) -> torch.Tensor:
    """(1 - w) * soft cross-entropy of the per-option distributions at ``temperature`` + w * cross-entropy
    with the gold option; a missing option has probability 0 in both and adds nothing."""
    if not 0.0 <= hard_weight <= 1.0:
        raise ValueError(f"hard_label_weight must be in [0, 1], got {hard_weight}")
    mask = batch.targets["choice_mask"]
    student_scores = masked_scores(student.logits, mask)
    teacher_scores = masked_scores(teacher.logits, mask)
    log_probs = F.log_softmax(student_scores / temperature, dim=-1)  # (B, C), -inf where missing
    targets = F.softmax(teacher_scores / temperature, dim=-1)  # (B, C), 0 where missing
    soft = -(targets * log_probs.masked_fill(~mask, 0.0)).sum(-1).mean()
    if hard_weight == 0:
        return soft
    hard = F.cross_entropy(student_scores, batch.targets["choice_labels"])
    return (1.0 - hard_weight) * soft + hard_weight * hard


def _take_scores(out: Any, batch: Batch) -> list[np.ndarray]:
    scores = masked_scores(out.logits, batch.targets["choice_mask"]).float().cpu().numpy()  # (B, C)
    counts = batch.targets["choice_mask"].sum(dim=1).tolist()
    return [scores[i, :n] for i, n in enumerate(counts)]


def option_scores(model: Any, features: list[ChoiceFeatures], collator: ChoiceCollator, batch_size: int
                  ) -> list[np.ndarray]:
    """Each example's option scores (C_i,), in input order."""
    return row_outputs(model, features, collator, batch_size, _take_scores,
                       lambda f: f.longest * len(f.input_ids))


def score(model: Any, data: EncodedTask, batch_size: int, env: Any) -> tuple[dict[str, float], dict]:
    predictions = {split: option_scores(model, features, data.collator, batch_size)
                   for split, features in data.dev.items()}
    features = data.dev["dev"]
    right = [int(np.argmax(s)) == f.label for s, f in zip(predictions["dev"], features) if f.label != IGNORE_INDEX]
    return {"accuracy": float(np.mean(right)) if right else 0.0}, predictions


def write_predictions(out_dir: Path, data: EncodedTask, predictions: dict[str, Any]) -> None:
    lines = [json.dumps(row) for row in prediction_rows(predictions["dev"])]
    write_text_atomically(out_dir / "predictions.jsonl", "\n".join(lines) + "\n")


CHOICE = TaskType(
    name="choice", aliases=("multiple-choice", "mc", "multiple_choice"), head="choice",
    hf_suffix="ForMultipleChoice",
    hf_names={"bert": {"choice.classifier": "classifier"}, "albert": {"choice.classifier": "classifier"},
              "electra": {"choice.dense": "sequence_summary.summary", "choice.classifier": "classifier"}},
    output_layer="choice.classifier", head_options=lambda spec: {"num_labels": 1},
    data_config=FinetuneDataConfig, load=load, encode=encode, loss=loss, distill_loss=distill_loss, score=score,
    write_predictions=write_predictions,
    task_meta=lambda data: {"name": data.spec.name, "max_seq_len": data.max_seq_len},
    onnx_outputs={"logits": {0: "batch"}}, graph_outputs=lambda out: (out.logits,),
    hf_config=lambda config: {}, predict=CHOICE_PREDICT)

register_task_type(CHOICE)
