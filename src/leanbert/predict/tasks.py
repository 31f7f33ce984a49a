"""``leanbert predict`` for task types with their own ``PredictSpec`` (leanbert.tasks: QA, NER, multiple
choice): the type reads the input, encodes it and formats the outputs; this module opens the model on its
backend (leanbert, Hugging Face, ONNX), runs it with length-sorted batches and writes the result.
``predict.classifier.predict_file`` dispatches here after checking ``--out``."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from tqdm import tqdm

from leanbert.atomic import make_temp_dir, write_text_atomically
from leanbert.errors import UserError
from leanbert.export.onnx import ONNX_NAME, OnnxRunner, read_onnx_config
from leanbert.finetune.source import resolve_model_dir
from leanbert.inference import id2label_names
from leanbert.model.padding import set_unpadding
from leanbert.model_dir import load_model, read_model_config
from leanbert.safe_io import read_json_object
from leanbert.tasks import TASK_TYPES, TaskType

STDIN = "-"
_BATCHES_PER_STEP = 8  # progress-bar granularity: batches handed to the backend at once


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
        with torch.inference_mode():
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
                      batch_size: int, progress: bool, log=print, stdin: TextIO | None = None) -> int:
    """``predict_file`` for a model of a task type with a ``PredictSpec`` (``out`` already checked). Returns the
    number of inputs."""
    if text_columns is not None:
        raise UserError(f"--text-columns is for sequence classification; {model} is a {task_type.name} model, "
                        "whose input fields are fixed (see `leanbert predict --help`)")
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
