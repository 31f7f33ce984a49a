"""The sequence task type: classification / regression of a text or text pair (GLUE tasks and ``custom``
files), the first entry of the task-type registry. Its pieces sit beside it: reading in glue.py, custom.py
and sequence_data.py, encoding in encode.py, metrics in metrics.py; scoring below (``score``,
over leanbert/inference.py's ``predict_logits``).

Head ``classifier`` (``num_labels`` outputs; 1 = regression), cross-entropy or MSE as transformers'
*ForSequenceClassification; OUT_DIR/predictions.tsv holds index, prediction, gold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from leanbert.batch import Batch
from leanbert.errors import UserError
from leanbert.inference import predict_logits
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Output
from leanbert.tasks.base import EncodedTask, TaskRequest, TaskType, register_task_type
from leanbert.tasks.encode import Collator, Features, PairEncoder
from leanbert.tasks.glue import TaskData, TaskSpec
from leanbert.tasks.metrics import predictions_from_logits
from leanbert.tasks.prediction_loss import prediction_loss
from leanbert.tasks.recipe import FinetuneDataConfig
from leanbert.tasks.sequence_data import load_task_data
from leanbert.train.distributed import DistEnv
from leanbert.train.precision import full_precision


def load(request: TaskRequest) -> TaskData:
    return load_task_data(request.task, data=request.data, train=request.train, dev=request.dev,
                          text_columns=request.text_columns, label_column=request.label_column,
                          regression=request.regression)


def check_model_fit(max_len: int, model: ModelConfig) -> None:
    """Refuse a sequence length beyond the model's positions."""
    if max_len > model.max_positions:
        raise UserError(f"data.max_seq_len={max_len} exceeds the model's max_positions ({model.max_positions})")


def check_vocab(features: list, tokenizer_dir: Path, model: ModelConfig) -> None:
    """Refuse a tokenizer whose ids exceed the model's vocabulary."""
    too_big = max((int(f.input_ids.max()) for f in features), default=0)
    if too_big >= model.vocab_size:
        raise UserError(f"{tokenizer_dir}: the tokenizer produces id {too_big} but the model's vocab_size is "
                        f"{model.vocab_size}; the tokenizer does not belong to this model")


def encode(task: TaskData, tokenizer_dir: Path, data: FinetuneDataConfig, model: ModelConfig,
           progress: bool = False) -> EncodedTask:
    """Tokenize ``task`` with the tokenizer in ``tokenizer_dir`` for a model of config ``model``."""
    max_len = data.max_seq_len
    check_model_fit(max_len, model)
    encoder = PairEncoder.from_dir(tokenizer_dir, max_len)
    examples = task.train[: data.max_train_examples] if data.max_train_examples else task.train
    train = encoder.encode(examples, progress=progress, desc="tokenize train")
    dev = {split: encoder.encode(rows, progress=progress, desc=f"tokenize {split}")
           for split, rows in task.dev.items()}
    check_vocab(train, tokenizer_dir, model)
    collator = Collator(encoder.pad_id, regression=task.spec.regression)
    return EncodedTask(task.spec, train, dev, collator, max_len, kind="sequence")


def loss(out: Any, batch: Batch) -> Output:
    """Cross-entropy (MSE for one output), with ``task_loss``, ``task_accuracy`` and ``task_count``."""
    if batch.class_labels is None:
        raise ValueError("fine-tuning needs batch.class_labels")
    logits = out.logits  # (B, C)
    count = logits.new_full((), float(logits.shape[0]), dtype=torch.float32)
    if logits.shape[-1] == 1:
        scores = logits[:, 0].float()  # (B,)
        value = F.mse_loss(scores, batch.class_labels.float())
        return Output(value, {"task_loss": value.detach(), "task_count": count})
    value = F.cross_entropy(logits.float(), batch.class_labels)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=-1) == batch.class_labels).float().mean()
    return Output(value, {"task_loss": value.detach(), "task_accuracy": accuracy, "task_count": count})



def distill_loss(student: Any, teacher: Any, batch: Batch, temperature: float, hard_weight: float
                 ) -> torch.Tensor:
    """TinyBERT's prediction-layer term on the (B, C) logits (MSE for a regressor)."""
    return prediction_loss(full_precision(student.logits), full_precision(teacher.logits), batch.class_labels,
                           temperature, hard_weight, regression=student.logits.shape[-1] == 1)


def predict(model: LeanBertModel, features: Sequence[Features], collator: Collator, batch_size: int,
            regression: bool, env: DistEnv | None = None) -> np.ndarray:
    """(N,) predictions in input order: class indices, or scores for a regression model."""
    return predictions_from_logits(predict_logits(model, features, collator, batch_size, env), regression)


def gold_labels(features: Sequence[Features]) -> np.ndarray:
    """(N,) the labels carried by ``features``."""
    return np.asarray([f.label for f in features])


def score(model: LeanBertModel, spec: TaskSpec, dev: Mapping[str, Sequence[Features]], collator: Collator,
          batch_size: int, env: DistEnv | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``spec``'s metrics of ``model`` on every dev split, and the predictions (split -> (N,))."""
    predictions = {split: predict(model, features, collator, batch_size, spec.regression, env)
                   for split, features in dev.items()}
    outputs = {split: (predictions[split], gold_labels(dev[split])) for split in predictions}
    return spec.compute_metrics(outputs), predictions


def score_task(model: Any, data: EncodedTask, batch_size: int, env: Any) -> tuple[dict[str, float], dict]:
    return score(model, data.spec, data.dev, data.collator, batch_size, env)


def write_predictions(out_dir: Path, data: EncodedTask, predictions: dict[str, np.ndarray]) -> None:
    """predictions.tsv with index, prediction, gold as label names (``split`` first when there are several)."""
    spec: TaskSpec = data.spec
    several = len(predictions) > 1
    lines = [("split\t" if several else "") + "index\tprediction\tgold"]
    for split, preds in predictions.items():
        gold = gold_labels(data.dev[split])
        for i, (p, g) in enumerate(zip(preds, gold)):
            lines.append((f"{split}\t" if several else "") + f"{i}\t{spec.label_name(p)}\t{spec.label_name(g)}")
    (out_dir / "predictions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def task_meta(data: EncodedTask) -> dict[str, Any]:
    spec = data.spec
    return {"name": spec.name, "labels": list(spec.labels) if spec.labels else None,
            "regression": spec.regression, "text_columns": [str(c) for c in spec.text_columns],
            "max_seq_len": data.max_seq_len}


def hf_config(config: ModelConfig) -> dict[str, Any]:
    return {"num_labels": config.num_labels,
            "problem_type": "regression" if config.num_labels == 1 else "single_label_classification"}


SEQUENCE = TaskType(
    name="sequence", head="classifier", hf_suffix="ForSequenceClassification",
    hf_names={"bert": {"classifier.classifier": "classifier"},
              "albert": {"classifier.classifier": "classifier"},
              "electra": {"classifier.dense": "classifier.dense", "classifier.classifier": "classifier.out_proj"}},
    output_layer="classifier.classifier",
    head_options=lambda spec: {"num_labels": spec.num_labels},
    data_config=FinetuneDataConfig, load=load, encode=encode, loss=loss, distill_loss=distill_loss,
    score=score_task, write_predictions=write_predictions, task_meta=task_meta,
    onnx_outputs={"logits": {0: "batch"}}, graph_outputs=lambda out: (out.logits,), hf_config=hf_config,
    logits_per_row=True, named_classes=True)

register_task_type(SEQUENCE)
