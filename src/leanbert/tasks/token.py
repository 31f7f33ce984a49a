"""The token-classification task type (NER): ``leanbert finetune MODEL --task ner --train FILE --dev FILE``.

Files: CoNLL columns or JSONL ``{tokens, tags}`` with BIO tags (tag_files.py). The label set is O plus B-/I- of
every entity type in the training file; a dev tag of a type training never saw is refused (FILE:LINE).
Sub-word alignment: word_align.py (first piece labelled; ``data.label_all_subwords=true`` labels all).
Head ``token`` (dropout + Linear(H, num_labels) per token, transformers' *ForTokenClassification), loss
cross-entropy over the labelled pieces. Dev metrics (entities.py, seqeval's default rules): ``entity_f1``
(main), ``entity_precision``, ``entity_recall``, ``token_accuracy`` and ``f1_<type>`` per entity type.
OUT_DIR gets ``predictions.conll`` (each dev line's columns plus the predicted tag) and ``entity_report.txt``
(the per-type table). Distillation: TinyBERT's prediction-layer loss on every real token's tag distribution.
"""

from __future__ import annotations

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
from leanbert.tasks.entities import entity_report
from leanbert.tasks.glue import TaskData
from leanbert.tasks.prediction_loss import prediction_loss
from leanbert.tasks.recipe import FinetuneDataConfig, Recipe
from leanbert.tasks.row_outputs import row_outputs
from leanbert.tasks.sequence import check_model_fit, check_vocab
from leanbert.tasks.tag_files import TaggedSentence, check_known_tags, conll_lines, label_list, read_tagged
from leanbert.tasks.token_predict import TOKEN_PREDICT
from leanbert.tasks.word_align import WordCollator, WordEncoder, continuation_labels, word_predictions
from leanbert.train.precision import full_precision

METRICS = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")


@dataclass
class TokenDataConfig(FinetuneDataConfig):
    """label_all_subwords: label every sub-word piece of a word (B- words' later pieces with I-), not just the
    first (transformers' run_ner ``label_all_tokens``)."""

    label_all_subwords: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.label_all_subwords, bool):
            raise UserError(f"data.label_all_subwords={self.label_all_subwords!r} must be true or false")


@dataclass(frozen=True)
class TokenSpec:
    name: str
    labels: tuple[str, ...]
    recipe: Recipe = field(default_factory=lambda: Recipe(lr=5e-5, epochs=3, batch_size=16, max_seq_len=128))
    main_metric: str = "entity_f1"

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def types(self) -> list[str]:
        return sorted({label[2:] for label in self.labels if label != "O"})

    @property
    def metric_names(self) -> list[str]:
        return [*METRICS, *(f"f1_{t}" for t in self.types)]


def load(request: TaskRequest) -> TaskData:
    require_train_dev(request, "CoNLL columns or JSONL {tokens, tags}", "tokens and tags")
    train = read_tagged(request.train)
    dev = read_tagged(request.dev)
    labels = label_list(train)
    check_known_tags(request.dev, dev, labels)
    return TaskData(TokenSpec("ner", tuple(labels)), train, {"dev": dev},
                     kind="token", files=(str(request.train), str(request.dev)))


def label_ids(sentences: list[TaggedSentence], labels: tuple[str, ...]) -> list[list[int]]:
    index = {name: i for i, name in enumerate(labels)}
    return [[index[tag] for tag in s.tags or ()] for s in sentences]


def encode(task: TaskData, tokenizer_dir: Path, data: TokenDataConfig, model: ModelConfig,
           progress: bool = False) -> EncodedTask:
    check_model_fit(data.max_seq_len, model)
    labels = task.spec.labels
    encoder = WordEncoder.from_dir(tokenizer_dir, data.max_seq_len)
    cont = continuation_labels(labels)
    train_rows = task.train[: data.max_train_examples] if data.max_train_examples else task.train
    options = {"label_all": data.label_all_subwords, "continuation": cont}
    train = encoder.encode_words([s.tokens for s in train_rows], label_ids(train_rows, labels), **options)
    dev = {split: encoder.encode_words([s.tokens for s in rows], label_ids(rows, labels), **options)
           for split, rows in task.dev.items()}
    check_vocab(train, tokenizer_dir, model)
    return EncodedTask(task.spec, train, dev, WordCollator(encoder.pad_id), data.max_seq_len, kind="token",
                       context={"sentences": task.dev, "label_all_subwords": data.label_all_subwords})


def loss(out: Any, batch: Batch) -> Output:
    """Cross-entropy over the labelled pieces, with ``task_loss``, ``task_accuracy`` (labelled pieces) and
    ``task_count`` (sentences)."""
    logits = out.logits  # (B, T, L)
    labels = batch.targets["token_labels"]  # (B, T)
    value = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                            ignore_index=IGNORE_INDEX)
    with torch.no_grad():
        labelled = labels != IGNORE_INDEX
        right = ((logits.argmax(-1) == labels) & labelled).sum()
        accuracy = right.float() / labelled.sum().clamp(min=1)
    count = logits.new_full((), float(logits.shape[0]), dtype=torch.float32)
    return Output(value, {"task_loss": value.detach(), "task_accuracy": accuracy, "task_count": count})


def distill_loss(student: Any, teacher: Any, batch: Batch, temperature: float, hard_weight: float
                 ) -> torch.Tensor:
    """TinyBERT's prediction-layer term on each real (non-pad) token's tag distribution; the hard part uses the
    labelled pieces only."""
    real = batch.attention_mask.bool()  # (B, T)
    labels = batch.targets["token_labels"][real] if hard_weight > 0 else None
    return prediction_loss(full_precision(student.logits[real]), full_precision(teacher.logits[real]), labels,
                           temperature, hard_weight)


def _take_logits(out: Any, batch: Batch) -> list[np.ndarray]:
    lengths = batch.attention_mask.sum(dim=1).tolist()
    logits = out.logits.float().cpu().numpy()
    return [logits[i, :n] for i, n in enumerate(lengths)]


def predicted_tags(model: Any, features: list, collator: Any, batch_size: int, labels: tuple[str, ...]
                   ) -> list[list[str]]:
    outputs = row_outputs(model, features, collator, batch_size, _take_logits, lambda f: f.input_ids.shape[0])
    outside = labels.index("O")
    return [[labels[i] for i in word_predictions(logits, f.first_pieces, outside)[0]]
            for logits, f in zip(outputs, features)]


def score(model: Any, data: EncodedTask, batch_size: int, env: Any) -> tuple[dict[str, float], dict]:
    spec: TokenSpec = data.spec
    predictions = {split: predicted_tags(model, features, data.collator, batch_size, spec.labels)
                   for split, features in data.dev.items()}
    gold = [list(s.tags) for s in data.context["sentences"]["dev"]]
    return entity_report(gold, predictions["dev"]).metrics(spec.types), predictions


def write_predictions(out_dir: Path, data: EncodedTask, predictions: dict[str, Any]) -> None:
    sentences = data.context["sentences"]["dev"]
    write_text_atomically(out_dir / "predictions.conll",
                          "\n".join(conll_lines(sentences, predictions["dev"])) + "\n")
    report = entity_report([list(s.tags) for s in sentences], predictions["dev"])
    write_text_atomically(out_dir / "entity_report.txt", report.table() + "\n")


def task_meta(data: EncodedTask) -> dict[str, Any]:
    return {"name": data.spec.name, "labels": list(data.spec.labels), "max_seq_len": data.max_seq_len,
            "label_all_subwords": data.context["label_all_subwords"]}


TOKEN = TaskType(
    name="token", aliases=("ner", "token-classification"), head="token", hf_suffix="ForTokenClassification",
    hf_names={family: {"token.classifier": "classifier"} for family in ("bert", "albert", "electra")},
    output_layer="token.classifier", head_options=lambda spec: {"num_labels": spec.num_labels},
    data_config=TokenDataConfig, load=load, encode=encode, loss=loss, distill_loss=distill_loss, score=score,
    write_predictions=write_predictions, task_meta=task_meta,
    onnx_outputs={"logits": {0: "batch", 1: "sequence"}}, graph_outputs=lambda out: (out.logits,),
    hf_config=lambda config: {"num_labels": config.num_labels}, predict=TOKEN_PREDICT)

register_task_type(TOKEN)
