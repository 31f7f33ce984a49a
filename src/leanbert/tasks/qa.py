"""The extractive-QA task type (``--task qa``): SQuAD v1.1 / v2.0 JSON, a ``span`` head (start/end logits per
token, transformers' ``qa_outputs``), doc-stride windows, n-best post-processing and the official metrics.

    leanbert finetune MODEL --task qa --train train-v1.1.json --dev dev-v1.1.json --out OUT

Reading: qa_data.py; windows: qa_features.py; answers: qa_postprocess.py; metrics: squad_metrics.py. SQuAD v2
mode (null answers) is on when any training or dev question is unanswerable. OUT/predictions.json is
``{question id: answer}`` ("" = no answer, at ``data.null_threshold``), the official scripts' input. The loss
is transformers' *ForQuestionAnswering loss, the mean of the start and end cross-entropies, over the window's real
tokens (padding masked); distillation matches the teacher's start and end distributions over the same tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from leanbert.batch import Batch
from leanbert.config import ConfigError, check_integer, check_number
from leanbert.errors import UserError
from leanbert.model.config import ModelConfig
from leanbert.objectives.base import Output
from leanbert.tasks.base import EncodedTask, PredictSpec, TaskRequest, TaskType, register_task_type
from leanbert.tasks.glue import TaskData
from leanbert.tasks.prediction_loss import soft_cross_entropy
from leanbert.tasks.qa_data import QAExample, read_questions, read_squad
from leanbert.tasks.qa_features import QACollator, QAFeatures, WindowEncoder
from leanbert.tasks.qa_postprocess import QAPrediction, predict_answers
from leanbert.tasks.recipe import FinetuneDataConfig, Recipe
from leanbert.tasks.sequence import check_model_fit, check_vocab
from leanbert.tasks.squad_metrics import squad_v1, squad_v2
from leanbert.train.distributed import DistEnv, gather_rows
from leanbert.train.precision import full_precision

QA_RECIPE = Recipe(lr=5e-5, epochs=2.0, batch_size=32, max_seq_len=384)  # run_qa's, lr for compact models


@dataclass
class QADataConfig(FinetuneDataConfig):
    """QA's data.* keys (defaults as transformers' run_qa).

    doc_stride:        tokens shared by consecutive windows of a long context.
    max_query_length:  question tokens kept.
    max_answer_length: longest answer in tokens.
    n_best:            start and end candidates per window, and answers kept per question.
    null_threshold:    SQuAD v2: answer "" when the null score beats the best span by more than this.
    """

    max_seq_len: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best: int = 20
    null_threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer("data.doc_stride", self.doc_stride, 0)
        for name in ("max_query_length", "max_answer_length", "n_best"):
            check_integer(f"data.{name}", getattr(self, name), 1)
        check_number("data.null_threshold", self.null_threshold, -1e6, 1e6)
        if self.max_query_length + 3 >= self.max_seq_len:
            raise ConfigError(f"data.max_query_length={self.max_query_length} leaves no room for context in "
                              f"data.max_seq_len={self.max_seq_len}")


@dataclass(frozen=True)
class QASpec:
    """What the task job needs to know about a QA task."""

    version_2: bool
    name: str = "qa"
    recipe: Recipe = QA_RECIPE

    @property
    def metric_names(self) -> list[str]:
        if self.version_2:
            return ["exact", "f1", "best_exact", "best_f1", "HasAns_exact", "HasAns_f1", "NoAns_exact",
                    "NoAns_f1"]
        return ["exact_match", "f1"]

    @property
    def main_metric(self) -> str:
        return "f1"


def load(request: TaskRequest) -> TaskData:
    """--task qa --train FILE --dev FILE (SQuAD JSON)."""
    wrong = {"--data": request.data, "--text-columns": request.text_columns,
             "--label-column": request.label_column, "--regression": request.regression or None}
    given = [flag for flag, value in wrong.items() if value is not None]
    if given:
        raise UserError(f"{', '.join(given)} do not apply to --task qa; it reads SQuAD JSON from --train and --dev")
    missing = [flag for flag, value in (("--train", request.train), ("--dev", request.dev)) if value is None]
    if missing:
        raise UserError(f"--task qa needs {' and '.join(missing)} (SQuAD JSON files, v1.1 or v2.0)")
    train, dev = read_squad(request.train), read_squad(request.dev)
    version_2 = any(e.impossible for e in (*train, *dev))
    return TaskData(QASpec(version_2), train, {"dev": dev}, kind="qa")


def encode(task: TaskData, tokenizer_dir: Path, data: QADataConfig, model: ModelConfig,
           progress: bool = False) -> EncodedTask:
    check_model_fit(data.max_seq_len, model)
    windows = WindowEncoder(tokenizer_dir, data.max_seq_len, data.doc_stride, data.max_query_length)
    examples = task.train[: data.max_train_examples] if data.max_train_examples else task.train
    train = windows.encode(examples, labels=True, progress=progress, desc="windows train")
    dev = {split: windows.encode(rows, labels=False, progress=progress, desc=f"windows {split}")
           for split, rows in task.dev.items()}
    check_vocab(train, tokenizer_dir, model)
    context = {"examples": dict(task.dev), "settings": settings(data, task.spec.version_2)}
    return EncodedTask(task.spec, train, dev, QACollator(windows.pad_id), data.max_seq_len, kind="qa",
                       context=context)


def settings(data: QADataConfig, version_2: bool) -> dict[str, Any]:
    """The window and answer settings, saved with the model so that predict uses them."""
    return {"max_seq_len": data.max_seq_len, "doc_stride": data.doc_stride,
            "max_query_length": data.max_query_length, "max_answer_length": data.max_answer_length,
            "n_best": data.n_best, "version_2": version_2, "null_threshold": data.null_threshold}


def split_logits(out: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) start and end logits from the span head's (B, T, 2)."""
    start, end = out.span_logits.unbind(dim=-1)
    return start, end


def window_logits(out: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) start and end logits in full precision with padding at -1e4, so that every softmax over a window
    (the loss, distillation) sees its real tokens only."""
    pad = batch.attention_mask == 0  # (B, T)
    start, end = (full_precision(x).masked_fill(pad, -1e4) for x in split_logits(out))
    return start, end


def loss(out: Any, batch: Batch) -> Output:
    """transformers' QA loss (the mean of the start and end cross-entropies; positions outside the window are
    clamped to T and ignored) over each window's real tokens. Padding is kept out of the softmax: transformers
    scores its padded positions too, which makes the loss depend on how much padding a batch carries, and under
    unpadding (whose padded hidden states are zeros) it gave every pad the head's bias as its logit, a different
    objective that trained worse on SQuAD (BENCHMARKS.md)."""
    start, end = window_logits(out, batch)
    width = start.shape[1]
    start_gold = batch.targets["start_positions"].clamp(0, width)
    end_gold = batch.targets["end_positions"].clamp(0, width)
    value = (F.cross_entropy(start, start_gold, ignore_index=width)
             + F.cross_entropy(end, end_gold, ignore_index=width)) / 2
    count = value.new_full((), float(start.shape[0]), dtype=torch.float32)
    return Output(value, {"task_loss": value.detach(), "task_count": count})


def distill_loss(student: Any, teacher: Any, batch: Batch, temperature: float, hard_weight: float
                 ) -> torch.Tensor:
    """Soft cross-entropy to the teacher's start and end distributions over the real tokens (mean of the
    two), mixed with the gold positions' loss at ``hard_weight``."""
    terms = [soft_cross_entropy(ours, theirs, temperature)
             for ours, theirs in zip(window_logits(student, batch), window_logits(teacher, batch))]
    soft = (terms[0] + terms[1]) / 2
    if hard_weight == 0:
        return soft
    return (1 - hard_weight) * soft + hard_weight * loss(student, batch).loss


def window_outputs(model: Any, features: list[QAFeatures], collator: QACollator, batch_size: int,
                   env: DistEnv) -> list[dict[str, np.ndarray]]:
    """Per window, in order: start_logits and end_logits (T_i,), in eval mode without gradients. Under
    torchrun each rank runs every world_size-th window and the results are gathered."""
    mine = np.arange(env.rank, len(features), env.world_size)
    width = max((f.input_ids.shape[0] for f in features), default=1)
    device = next(model.parameters()).device
    local = torch.zeros((len(mine), width, 2))  # (n_mine, W, 2), zero-padded
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(mine), batch_size):
            rows = mine[begin:begin + batch_size]
            batch = collator([features[i] for i in rows]).to(device)
            logits = model(batch.input_ids, batch.attention_mask, batch.token_type_ids).span_logits
            local[begin:begin + len(rows), : logits.shape[1]] = logits.float().cpu()
    model.train(was_training)
    full = torch.zeros((len(features), width, 2))
    for rank, part in enumerate(gather_rows(local, env)):
        full[rank::env.world_size] = part.cpu()
    return [{"start_logits": full[i, : f.input_ids.shape[0], 0].numpy(),
             "end_logits": full[i, : f.input_ids.shape[0], 1].numpy()} for i, f in enumerate(features)]


def answers_of(predictions: list[QAPrediction], examples: list[QAExample], threshold: float | None
               ) -> dict[str, str]:
    return {e.qid: p.answer(threshold) for e, p in zip(examples, predictions)}


def evaluate(predictions: list[QAPrediction], examples: list[QAExample], version_2: bool,
             threshold: float) -> dict[str, float]:
    """The official metrics of ``predictions`` (v2: at ``threshold`` and at the best threshold)."""
    gold = {e.qid: e.answer_texts for e in examples}
    if not version_2:
        return squad_v1(answers_of(predictions, examples, None), gold)
    texts = answers_of(predictions, examples, float("inf"))  # the best span, never ""
    margins = {e.qid: p.null_margin for e, p in zip(examples, predictions)}
    return squad_v2(texts, margins, gold, threshold)


def score(model: Any, data: EncodedTask, batch_size: int, env: DistEnv | None = None
          ) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    env = env or DistEnv()
    config = data.context["settings"]
    metrics: dict[str, float] = {}
    answers: dict[str, dict[str, str]] = {}
    for split, features in data.dev.items():
        examples = data.context["examples"][split]
        outputs = window_outputs(model, features, data.collator, batch_size, env)
        predictions = predict_answers(examples, features, outputs, config["n_best"], config["max_answer_length"],
                                      with_null=config["version_2"])
        found = evaluate(predictions, examples, config["version_2"], config["null_threshold"])
        suffix = "" if len(data.dev) == 1 else f"_{split}"
        metrics.update({f"{name}{suffix}": value for name, value in found.items()})
        threshold = config["null_threshold"] if config["version_2"] else None
        answers[split] = answers_of(predictions, examples, threshold)
    return metrics, answers


def write_predictions(out_dir: Path, data: EncodedTask, predictions: dict[str, dict[str, str]]) -> None:
    """predictions.json ({question id: answer}); with several dev splits predictions_<split>.json."""
    for split, answers in predictions.items():
        name = "predictions.json" if len(predictions) == 1 else f"predictions_{split}.json"
        (out_dir / name).write_text(json.dumps(answers, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def task_meta(data: EncodedTask) -> dict[str, Any]:
    return {"name": "qa", **data.context["settings"]}


# ------------------------------------------------------------------------------------------------------------
# leanbert predict: SQuAD JSON or JSONL {question, context} -> JSONL {id, answer, score, start, end}


def read_for_predict(source: str, stdin: Any) -> list[QAExample]:
    return read_questions(source, stdin.read() if source == "-" else None)


def _saved(meta: dict[str, Any], key: str) -> Any:
    """A setting the model saved, else QADataConfig's default."""
    value = meta.get(key)
    default = getattr(QADataConfig, key)
    return value if isinstance(value, type(default)) and not isinstance(value, bool) else default


def encode_for_predict(examples: list[QAExample], tokenizer_dir: Path, meta: dict[str, Any]
                       ) -> tuple[list[QAFeatures], QACollator, dict[str, Any]]:
    max_len, stride, query = (_saved(meta, k) for k in ("max_seq_len", "doc_stride", "max_query_length"))
    positions = meta.get("max_positions")
    if isinstance(positions, int) and positions < max_len:  # defaults beyond a small model: scale them down
        max_len, stride, query = positions, min(stride, positions // 4), min(query, positions // 2)
    windows = WindowEncoder(tokenizer_dir, max_len, stride, query)
    features = windows.encode(examples, labels=False)
    context = {"examples": examples, "n_best": _saved(meta, "n_best"),
               "max_answer_length": _saved(meta, "max_answer_length"),
               "version_2": meta.get("version_2") is True, "null_threshold": float(_saved(meta, "null_threshold"))}
    return features, QACollator(windows.pad_id), context


def format_answers(outputs: list[dict[str, np.ndarray]], features: list[QAFeatures], context: dict[str, Any]
                   ) -> str:
    """One JSON line per question: id, answer ("" = none), score (the answer's probability among the n-best
    candidates), start and end (character offsets in the context; null without an answer)."""
    examples = context["examples"]
    predictions = predict_answers(examples, features, outputs, context["n_best"], context["max_answer_length"],
                                  with_null=context["version_2"])
    lines = []
    for example, prediction in zip(examples, predictions):
        threshold = context["null_threshold"] if context["version_2"] else None
        text = prediction.answer(threshold)
        if text or (prediction.best is not None and threshold is None):
            best = prediction.best
            row = {"id": example.qid, "answer": best.text, "score": round(best.probability, 6),
                   "start": best.start, "end": best.end}
        else:
            null = next((c.probability for c in prediction.candidates if c.start < 0), 0.0)
            row = {"id": example.qid, "answer": "", "score": round(null, 6), "start": None, "end": None}
        lines.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(lines) + "\n"


QA = TaskType(
    name="qa", aliases=("squad", "question-answering"), head="span", hf_suffix="ForQuestionAnswering",
    hf_names={family: {"span.qa_outputs": "qa_outputs"} for family in ("bert", "albert", "electra")},
    output_layer="span.qa_outputs", head_options=lambda spec: {"num_labels": 2}, data_config=QADataConfig,
    load=load, encode=encode, loss=loss, distill_loss=distill_loss, score=score,
    write_predictions=write_predictions, task_meta=task_meta,
    onnx_outputs={"start_logits": {0: "batch", 1: "sequence"}, "end_logits": {0: "batch", 1: "sequence"}},
    graph_outputs=split_logits, hf_config=lambda config: {"num_labels": 2},
    predict=PredictSpec(read=read_for_predict, encode=encode_for_predict, format=format_answers))

register_task_type(QA)
