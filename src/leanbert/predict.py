"""Batch inference over a file: ``leanbert predict MODEL --input FILE --text-columns A[,B] --out preds.tsv``.

MODEL is anything a classifier can be read from: a leanbert model directory, a finetune OUT_DIR (its
``model/``), a local Hugging Face ``*ForSequenceClassification`` directory (imported on the fly), or a
directory written by ``leanbert export --format onnx`` (run with onnxruntime). Label names come from what the
model saved: ``task.labels`` in a leanbert config (``leanbert finetune`` writes it), ``id2label`` in a Hugging
Face or ONNX config, else ``LABEL_i`` as transformers names them. A model with one output is a regressor: the
output has ``score`` instead of ``label`` and ``probability``.

Rows are tokenized like fine-tuning (``PairEncoder``), sorted by length so padding stays small, run in batches
and written back in input order: ``index<TAB>label<TAB>probability`` where probability is the softmax of the
predicted class (what ``transformers.pipeline("text-classification")`` reports as ``score``).

A model of a task type with its own ``PredictSpec`` (leanbert.tasks; extractive QA) is told apart by its heads
(``saved_heads``) and handed to ``predict_task_file``: the type reads the input, builds the features and formats
the outputs; this module opens the model on its backend and runs it (the last section below).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from leanbert.atomic import make_temp_dir, write_text_atomically
from leanbert.errors import UserError
from leanbert.export.onnx import ONNX_NAME, OnnxRunner, read_onnx_config
from leanbert.finetune.custom import parse_columns
from leanbert.finetune.encode import Collator, Features, PairEncoder
from leanbert.finetune.readers import detect_format, read_rows
from leanbert.finetune.source import resolve_model_dir
from leanbert.finetune.tasks import Example
from leanbert.model.padding import set_unpadding
from leanbert.model_dir import load_model, read_model_config
from leanbert.safe_io import read_json_object
from leanbert.tasks import TASK_TYPES, TaskType, task_type_of

STDIN = "-"
DEFAULT_MAX_LEN = 512  # when the model saved none: BERT's usual limit, capped by max_positions
_BATCHES_PER_STEP = 8  # progress-bar granularity: batches handed to the backend at once

# (features of one chunk, collator, batch size) -> (N, num_labels) float32 logits in the chunk's order
LogitsFn = Callable[[Sequence[Features], Collator, int], np.ndarray]


@dataclass
class Classifier:
    """What ``predict_file`` needs from a model, whatever its format."""

    logits: LogitsFn
    labels: tuple[str, ...] | None  # None: a regressor (one output)
    tokenizer_dir: Path
    max_seq_len: int
    description: str


def label_names(num_labels: int, saved: Sequence[Any] | None) -> tuple[str, ...] | None:
    """Names for a classifier's outputs: the saved ones when they fit, else transformers' LABEL_i; None for a
    regressor (``num_labels`` 1)."""
    if num_labels == 1:
        return None
    if saved is not None and len(saved) == num_labels:
        return tuple(str(name) for name in saved)
    return tuple(f"LABEL_{i}" for i in range(num_labels))


def id2label_names(hf_config: dict[str, Any], num_labels: int) -> tuple[str, ...] | None:
    """label_names from a Hugging Face config's ``id2label`` (keys are strings in JSON)."""
    mapping = hf_config.get("id2label")
    saved = None
    if isinstance(mapping, dict) and all(str(i) in mapping for i in range(num_labels)):
        saved = [mapping[str(i)] for i in range(num_labels)]
    return label_names(num_labels, saved)


# ------------------------------------------------------------------------------------------------------------
# Opening a model


def _torch_classifier(model_dir: Path, labels_from: dict[str, Any] | None, description: str) -> Classifier:
    from leanbert.inference import predict_logits
    from leanbert.model.padding import set_unpadding
    from leanbert.model_dir import load_model, read_model_config

    config, meta = read_model_config(model_dir)
    if "classifier" not in config.heads:
        raise UserError(f"{description}: the model has no classifier head (heads: {config.heads or 'none'}); "
                        "fine-tune it first (`leanbert finetune`)")
    model = load_model(model_dir)
    set_unpadding(model, True)
    task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
    if labels_from is not None:
        labels = id2label_names(labels_from, config.num_labels)
    else:
        labels = label_names(config.num_labels, task.get("labels"))
    max_len = task.get("max_seq_len") if isinstance(task.get("max_seq_len"), int) else DEFAULT_MAX_LEN

    def logits(features: Sequence[Features], collator: Collator, batch_size: int) -> np.ndarray:
        return predict_logits(model, features, collator, batch_size)

    return Classifier(logits, labels, model_dir, min(max_len, config.max_positions), description)


def open_classifier(model: str | Path, work_dir: Path, log=print) -> Classifier:
    """A ``Classifier`` for MODEL (see the module docstring); a Hugging Face model is imported under
    ``work_dir``, which the caller removes."""
    from leanbert.export.onnx import ONNX_NAME, open_onnx_classifier
    from leanbert.finetune.source import resolve_model_dir
    from leanbert.safe_io import read_json_object

    path = Path(model)
    for candidate in (path, path / "model"):
        if (candidate / ONNX_NAME).is_file():
            return open_onnx_classifier(candidate)
    hf_labels = None
    config_path = path / "config.json"
    if path.is_dir() and config_path.is_file():
        meta = read_json_object(config_path, "a leanbert or Hugging Face model config")
        if "model_type" in meta and "format" not in meta:
            hf_labels = meta  # the import keeps the weights, not id2label: read the names here
    model_dir = resolve_model_dir(path, work_dir, log=log)
    return _torch_classifier(model_dir, hf_labels, str(path))


# ------------------------------------------------------------------------------------------------------------
# Reading the input


def _as_text(value: Any, where: str, column: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where}: expected text in column {column!r}, found {value!r}")
    return value


def read_file_examples(path: str | Path, text_columns: Sequence[str],
                       fmt: str | None = None) -> list[Example]:
    """The texts of every row of a .tsv/.csv/.jsonl file with a header (a malformed row: UserError
    FILE:LINE)."""
    fmt = fmt or detect_format(path)
    examples = []
    for line, values in read_rows(path, fmt, list(text_columns)):
        where = f"{path}:{line}"
        texts = [_as_text(v, where, c) for v, c in zip(values, text_columns)]
        examples.append(Example(texts[0], texts[1] if len(texts) == 2 else None, 0, str(path), line))
    return examples


def read_stdin_examples(stream: TextIO, pairs: bool) -> list[Example]:
    """One text per non-empty line, or ``A<TAB>B`` per line for pairs."""
    examples = []
    for number, raw in enumerate(stream, start=1):
        text = raw.rstrip("\n").removesuffix("\r")
        if not text:
            continue
        if pairs:
            parts = text.split("\t")
            if len(parts) != 2:
                raise UserError(f"<stdin>:{number}: expected two texts separated by one tab, found "
                                f"{len(parts)} field(s)")
            examples.append(Example(parts[0], parts[1], 0, "<stdin>", number))
        else:
            examples.append(Example(text, None, 0, "<stdin>", number))
    return examples


def read_examples(source: str, text_columns: str | None, stdin: TextIO | None = None) -> list[Example]:
    """Examples from a file (``text_columns`` required) or from stdin (``-``; two columns mean tab pairs)."""
    if source == STDIN:
        pairs = text_columns is not None and len(parse_columns(text_columns)) == 2
        return read_stdin_examples(stdin or sys.stdin, pairs)
    if text_columns is None:
        raise UserError(f"--input {source}: --text-columns is required for a file (e.g. sentence, or "
                        "question,passage)")
    return read_file_examples(source, parse_columns(text_columns))


# ------------------------------------------------------------------------------------------------------------
# Running


def sorted_logits(logits_fn: LogitsFn, features: Sequence[Features], collator: Collator, batch_size: int,
                  progress: bool = False) -> np.ndarray:
    """(N, C) logits in input order; rows go to ``logits_fn`` sorted by length, ``_BATCHES_PER_STEP``
    batches at a time so the progress bar moves."""
    from tqdm import tqdm

    order = np.argsort([f.input_ids.shape[0] for f in features], kind="stable")
    step = batch_size * _BATCHES_PER_STEP
    parts = []
    with tqdm(total=len(order), desc="predict", unit="ex", disable=not progress) as bar:
        for start in range(0, len(order), step):
            rows = order[start:start + step]
            parts.append(logits_fn([features[i] for i in rows], collator, batch_size))  # (n, C)
            bar.update(len(rows))
    out = np.empty((len(order), parts[0].shape[1] if parts else 1), dtype=np.float32)  # (N, C)
    if parts:
        out[order] = np.concatenate(parts)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits in float64 (stable: the row max is subtracted)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def format_predictions(logits: np.ndarray, labels: tuple[str, ...] | None) -> list[str]:
    """TSV lines (header first): index, label, probability; or index, score for a regressor."""
    if labels is None:
        return ["index\tscore", *(f"{i}\t{float(row[0]):.6g}" for i, row in enumerate(logits))]
    probs = softmax(logits)  # (N, C)
    best = probs.argmax(axis=1)  # (N,)
    return ["index\tlabel\tprobability",
            *(f"{i}\t{labels[k]}\t{probs[i, k]:.6f}" for i, k in enumerate(best))]


def check_out_file(out: str, inputs: Iterable[str | Path], overwrite: bool) -> None:
    """``--out`` must be a file path that is no input and exists only with ``overwrite`` (``-`` = stdout)."""
    if out == STDIN:
        return
    path = Path(out)
    if path.is_dir():
        raise UserError(f"--out {out}: is a directory; expected a file name such as preds.tsv")
    for item in inputs:
        if item != STDIN and Path(item).exists() and path.exists() and path.resolve() == Path(item).resolve():
            raise UserError(f"--out {out}: is the input {item}; choose another file")
    if path.exists() and not overwrite:
        raise UserError(f"--out {out}: exists; pass --overwrite to replace it")


def predict_file(model: str | Path, source: str, out: str, text_columns: str | None = None,
                 batch_size: int = 32, overwrite: bool = False, progress: bool = True, log=print,
                 stdin: TextIO | None = None) -> int:
    """Run MODEL over ``source`` (a file or ``-``) and write ``out`` (atomically; ``-`` = stdout). Returns the
    number of rows."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size={batch_size!r} must be a positive integer")
    task_type = task_type_of(*saved_heads(model))
    if task_type is not None and task_type.predict is not None:  # QA, ...: the type reads and formats
        return predict_task_file(model, task_type, source, out, text_columns, batch_size, overwrite, progress,
                                 log, stdin)
    check_out_file(out, [source, model], overwrite)
    examples = read_examples(source, text_columns, stdin)
    if not examples:
        raise UserError(f"--input {source}: no rows to predict")
    work = make_temp_dir(None, "leanbert-predict", "work")
    try:
        classifier = open_classifier(model, work, log=log)
        encoder = PairEncoder.from_dir(classifier.tokenizer_dir, classifier.max_seq_len)
        features = encoder.encode(examples)
        logits = sorted_logits(classifier.logits, features, Collator(encoder.pad_id), batch_size, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(format_predictions(logits, classifier.labels)) + "\n"
    if out == STDIN:
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out, text)
    return len(examples)


# ------------------------------------------------------------------------------------------------------------
# Task types with their own predict (leanbert.tasks: QA, ...): the type reads the input, encodes it and formats
# the outputs; this part opens the model on its backend (leanbert, Hugging Face, ONNX) and runs it.

# (features of one chunk, collator, batch size) -> per batch {output name: (b, ...) array}
OutputsFn = Callable[[Sequence[Any], Callable, int], list[dict[str, np.ndarray]]]


@dataclass
class TaskRunner:
    outputs: OutputsFn
    tokenizer_dir: Path
    task_meta: dict[str, Any]  # the model's saved "task" ({} for a Hugging Face model) + its max_positions
    description: str


def saved_heads(model: str | Path) -> tuple[list[str], str | None]:
    """The heads MODEL holds and its saved task type, from its config.json (leanbert or ONNX: ``model.heads``
    and ``task.type``; Hugging Face: the task type whose class suffix ends ``architectures[0]``), without
    loading it; ([], None) when none can be told."""
    path = Path(model)
    for candidate in (path, path / "model"):
        config_path = candidate / "config.json"
        if not config_path.is_file():
            continue
        meta = read_json_object(config_path, "a leanbert, ONNX or Hugging Face model config")
        if isinstance(meta.get("model"), dict):
            heads = meta["model"].get("heads")
            task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
            return ([str(h) for h in heads] if isinstance(heads, list) else []), task.get("type")
        architectures = meta.get("architectures")
        if isinstance(architectures, list) and architectures:
            named = [t for t in TASK_TYPES.values() if str(architectures[0]).endswith(t.hf_suffix)][:1]
            return [t.head for t in named], (named[0].name if named else None)
        return [], None
    return [], None


def _torch_outputs(model: Any, task_type: TaskType) -> OutputsFn:
    names = list(task_type.onnx_outputs)

    def run(features: Sequence[Any], collator: Callable, batch_size: int) -> list[dict[str, np.ndarray]]:
        parts = []
        with torch.no_grad():
            for start in range(0, len(features), batch_size):
                batch = collator(features[start:start + batch_size])
                out = model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
                parts.append({n: t.float().numpy() for n, t in zip(names, task_type.graph_outputs(out))})
        return parts

    return run


def open_task_runner(model: str | Path, task_type: TaskType, work_dir: Path, log=print) -> TaskRunner:
    """MODEL (leanbert dir, finetune OUT_DIR, Hugging Face dir imported under ``work_dir``, ONNX dir) as a
    runner of ``task_type``'s outputs."""
    path = Path(model)
    for candidate in (path, path / "model"):
        if (candidate / ONNX_NAME).is_file():
            meta = read_onnx_config(candidate)
            task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
            positions = (meta.get("model") or {}).get("max_positions")
            run = partial(OnnxRunner(candidate / ONNX_NAME).outputs, names=list(task_type.onnx_outputs))
            return TaskRunner(run, candidate, {**task, "max_positions": positions}, str(path))
    model_dir = resolve_model_dir(path, work_dir, log=log)
    _, meta = read_model_config(model_dir)
    network = load_model(model_dir).eval()
    set_unpadding(network, True)
    task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
    if not task and model_dir != path and (path / "config.json").is_file():  # a Hugging Face dir: the import
        hf_config = read_json_object(path / "config.json", "a model config")  # keeps no id2label (NER tags)
        names = id2label_names(hf_config, network.config.num_labels) if "id2label" in hf_config else None
        task = {"labels": list(names)} if names else {}
    return TaskRunner(_torch_outputs(network, task_type), model_dir,
                      {**task, "max_positions": network.config.max_positions}, str(path))


def task_outputs(runner: TaskRunner, task_type: TaskType, features: Sequence[Any], collator: Callable,
                 batch_size: int, progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Per feature, in input order: {output name: array}, per-token outputs cut to the feature's length. Rows
    run sorted by length so padding stays small."""
    from tqdm import tqdm

    order = np.argsort([f.input_ids.shape[0] for f in features], kind="stable")
    per_token = {name for name, axes in task_type.onnx_outputs.items() if 1 in axes}
    rows: list[dict[str, np.ndarray]] = [{} for _ in features]
    step = batch_size * _BATCHES_PER_STEP
    with tqdm(total=len(order), desc="predict", unit="ex", disable=not progress) as bar:
        for start in range(0, len(order), step):
            chunk = order[start:start + step]
            parts = runner.outputs([features[i] for i in chunk], collator, batch_size)
            for offset, part in zip(range(0, len(chunk), batch_size), parts):
                for j, index in enumerate(chunk[offset:offset + batch_size]):
                    length = features[index].input_ids.shape[0]
                    rows[index] = {name: (value[j, :length] if name in per_token else value[j])
                                   for name, value in part.items()}
            bar.update(len(chunk))
    return rows


def predict_task_file(model: str | Path, task_type: TaskType, source: str, out: str, text_columns: str | None,
                      batch_size: int, overwrite: bool, progress: bool, log=print,
                      stdin: TextIO | None = None) -> int:
    """``predict_file`` for a model of a task type with a ``PredictSpec``. Returns the number of inputs."""
    if text_columns is not None:
        raise UserError(f"--text-columns is for sequence classification; {model} is a {task_type.name} model, "
                        "whose input fields are fixed (see `leanbert predict --help`)")
    check_out_file(out, [source, model], overwrite)
    spec = task_type.predict
    examples = spec.read(source, stdin or sys.stdin)
    if not examples:
        raise UserError(f"--input {source}: nothing to predict")
    work = make_temp_dir(None, "leanbert-predict", "work")
    try:
        runner = open_task_runner(model, task_type, work, log)
        features, collator, context = spec.encode(examples, runner.tokenizer_dir, runner.task_meta)
        outputs = task_outputs(runner, task_type, features, collator, batch_size, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_output(out, spec.format(outputs, features, context))
    return len(examples)


def write_output(out: str, text: str) -> None:
    """``text`` to stdout (``-``) or atomically into the file ``out``."""
    if out == STDIN:
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out, text)
