"""Batch inference over a file: ``leanbert predict MODEL --input FILE --text-columns A[,B] --out preds.tsv``.

MODEL is anything a classifier can be read from: a leanbert model directory, a finetune OUT_DIR (its
``model/``), a local Hugging Face ``*ForSequenceClassification`` directory (imported on the fly), or a
directory written by ``leanbert export --format onnx`` (run with onnxruntime). Label names come from what the
model saved: ``task.labels`` in a leanbert config (``leanbert finetune`` writes it), ``id2label`` in a Hugging
Face or ONNX config, else ``LABEL_i`` as transformers names them. A model with one output is a regressor: the
output has ``score`` instead of ``label`` and ``probability``.

Rows are tokenized like fine-tuning (``PairEncoder``, the Rust tokenizer's batch encoder), sorted by length and
cut into batches by a token budget (``inference.plan_batches``: little padding, and the encoder's unpadding
skips the rest), run under ``torch.inference_mode`` with SDPA attention, and written back in input order:
``index<TAB>label<TAB>probability`` where probability is the softmax of the predicted class (what
``transformers.pipeline("text-classification")`` reports as ``score``).

``--precision bf16`` (PyTorch models, CPUs with AVX512-BF16 or AMX) runs under bf16 autocast and then re-runs
up to CHECK_ROWS rows in fp32 to log how often the labels agree (and both accuracies with ``--label-column``):
what the lower precision costs is always printed.

A model of a task type with its own ``PredictSpec`` (leanbert.tasks; extractive QA) is told apart by its heads
(``saved_heads``) and handed to ``predict_task_file``: the type reads the input, builds the features and formats
the outputs; this module opens the model on its backend and runs it (the last section below).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from leanbert.atomic import make_temp_dir
from leanbert.errors import UserError
from leanbert.export.onnx import ONNX_NAME, open_onnx_predictor
from leanbert.finetune.source import resolve_model_dir
from leanbert.inference import (
    DEFAULT_MAX_LEN,
    DEFAULT_MAX_TOKENS,
    PRECISIONS,
    Predictor,
    id2label_names,
    label_names,
    run_in_order,
    torch_forward,
)
from leanbert.model.padding import set_unpadding
from leanbert.model_dir import load_model, read_model_config
from leanbert.predict.tasks import STDIN, predict_task_file, saved_heads, write_output
from leanbert.safe_io import read_json_object
from leanbert.tasks import task_type_of
from leanbert.tasks.custom import parse_columns
from leanbert.tasks.encode import Collator, Features, PairEncoder
from leanbert.tasks.glue import Example
from leanbert.tasks.readers import detect_format, read_rows
from leanbert.train.cpu_features import require_bf16

CHECK_ROWS = 512  # rows a lower precision is checked on against fp32 (spread over the whole input)


# ------------------------------------------------------------------------------------------------------------
# Opening a model


def _torch_predictor(model_dir: Path, labels_from: dict[str, Any] | None, description: str,
                     precision: str) -> Predictor:
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
    variants = {"fp32": torch_forward(model)} if precision != "fp32" else None
    return Predictor(torch_forward(model, precision), labels, model_dir, min(max_len, config.max_positions),
                     description, variants)


def open_predictor(model: str | Path, work_dir: Path, log=print, precision: str = "fp32") -> Predictor:
    """A ``Predictor`` for MODEL (see the module docstring); a Hugging Face model is imported under
    ``work_dir``, which the caller removes. ``precision`` bf16 needs a PyTorch model and a CPU with native
    bf16 (or a GPU)."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    path = Path(model)
    for candidate in (path, path / "model"):
        if (candidate / ONNX_NAME).is_file():
            if precision != "fp32":
                raise UserError(f"--precision {precision}: {candidate} is an ONNX model (its precision was "
                                "fixed at export: fp32 or --quantize int8); drop --precision")
            return open_onnx_predictor(candidate)
    if precision == "bf16" and not torch.cuda.is_available():
        require_bf16("--precision bf16")
    hf_labels = None
    config_path = path / "config.json"
    if path.is_dir() and config_path.is_file():
        meta = read_json_object(config_path, "a leanbert or Hugging Face model config")
        if "model_type" in meta and "format" not in meta:
            hf_labels = meta  # the import keeps the weights, not id2label: read the names here
    model_dir = resolve_model_dir(path, work_dir, log=log)
    return _torch_predictor(model_dir, hf_labels, str(path), precision)


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


def read_gold(source: str, column: str, labels: tuple[str, ...] | None, count: int) -> np.ndarray:
    """(N,) gold label indices from ``column`` of the input file: a label name of the model, or its index."""
    if labels is None:
        raise UserError(f"--label-column {column}: the model is a regressor (no labels to compare with)")
    if source == STDIN:
        raise UserError(f"--label-column {column}: needs a file --input, not stdin")
    gold = []
    for line, (value,) in read_rows(source, detect_format(source), [column]):
        value = str(value)
        if value in labels:
            gold.append(labels.index(value))
        elif value.isdigit() and int(value) < len(labels):
            gold.append(int(value))
        else:
            raise UserError(f"{source}:{line}: label {value!r} in column {column!r} is neither one of the "
                            f"model's labels ({', '.join(labels)}) nor an index below {len(labels)}")
    if len(gold) != count:
        raise UserError(f"{source}: {len(gold)} labels for {count} rows")
    return np.asarray(gold)


def check_precision(predictor: Predictor, precision: str, features: Sequence[Features], collator: Collator,
                    logits: np.ndarray, gold: np.ndarray | None, batch_size: int, log=print) -> dict[str, Any]:
    """Run the fp32 model on up to CHECK_ROWS rows spread over the input and log how often the lower
    precision's labels agree (and, with gold labels, both accuracies): a precision's cost is never silent."""
    rows = np.unique(np.linspace(0, len(features) - 1, min(CHECK_ROWS, len(features))).astype(np.int64))
    reference = run_in_order(predictor.variants["fp32"], [features[i] for i in rows], collator, batch_size)
    ours, theirs = logits[rows].argmax(axis=1), reference.argmax(axis=1)
    result: dict[str, Any] = {"rows": len(rows), "agreement": float((ours == theirs).mean()),
                              "max_probability_change": float(np.abs(softmax(logits[rows]) -
                                                                     softmax(reference)).max())}
    line = (f"{precision} vs fp32 on {len(rows)} of {len(features)} rows: labels agree on "
            f"{100 * result['agreement']:.2f}%, largest probability change {result['max_probability_change']:.4f}")
    if gold is not None:
        result["accuracy"] = {precision: float((ours == gold[rows]).mean()),
                              "fp32": float((theirs == gold[rows]).mean())}
        change = result["accuracy"][precision] - result["accuracy"]["fp32"]
        line += (f"; accuracy fp32 {result['accuracy']['fp32']:.4f} -> {precision} "
                 f"{result['accuracy'][precision]:.4f} ({100 * change:+.2f} points)")
    log(line)
    return result


def _check_options(batch_size: int, max_tokens: int) -> None:
    for flag, value in (("--batch-size", batch_size), ("--max-tokens", max_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{flag}={value!r} must be a positive integer")


def predict_file(model: str | Path, source: str, out: str, text_columns: str | None = None,
                 batch_size: int = 32, overwrite: bool = False, progress: bool = True, log=print,
                 stdin: TextIO | None = None, max_tokens: int = DEFAULT_MAX_TOKENS, precision: str = "fp32",
                 label_column: str | None = None) -> int:
    """Run MODEL over ``source`` (a file or ``-``) and write ``out`` (atomically; ``-`` = stdout). Returns the
    number of rows. Batches hold at most ``batch_size`` rows and ``max_tokens`` padded tokens. With
    ``label_column`` the accuracy on the file is logged; with a precision below fp32 its agreement with fp32."""
    _check_options(batch_size, max_tokens)
    check_out_file(out, [source, model], overwrite)
    task_type = task_type_of(*saved_heads(model))
    if task_type is not None and task_type.predict is not None:  # QA, NER, ...: the type reads and formats
        if precision != "fp32" or label_column is not None:
            raise UserError(f"--precision and --label-column are for sequence classification; {model} is a "
                            f"{task_type.name} model")
        return predict_task_file(model, task_type, source, out, text_columns, batch_size, progress, log, stdin)
    examples = read_examples(source, text_columns, stdin)
    if not examples:
        raise UserError(f"--input {source}: no rows to predict")
    work = make_temp_dir(None, "leanbert-predict", "work")
    try:
        predictor = open_predictor(model, work, log=log, precision=precision)
        gold = read_gold(source, label_column, predictor.labels, len(examples)) if label_column else None
        encoder = PairEncoder.from_dir(predictor.tokenizer_dir, predictor.max_seq_len)
        features = encoder.encode(examples)
        collator = Collator(encoder.pad_id)
        logits = run_in_order(predictor.forward, features, collator, batch_size, max_tokens, progress)
        if gold is not None:
            log(f"accuracy on {len(gold)} rows ({label_column}): {float((logits.argmax(1) == gold).mean()):.4f}")
        if precision != "fp32":
            check_precision(predictor, precision, features, collator, logits, gold, batch_size, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_output(out, "\n".join(format_predictions(logits, predictor.labels)) + "\n")
    return len(examples)
