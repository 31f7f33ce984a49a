"""The task-type contract: what fine-tuning, distillation, export and predict need to know about one kind of
task (sequence classification, extractive QA, token classification, multiple choice, ...).

Every workflow goes through a ``TaskType`` instead of assuming a classifier:

* ``leanbert finetune --task NAME``: ``task_type_for(NAME)`` picks the type; ``load`` reads the files,
  ``encode`` turns them into features, ``TaskObjective`` (finetune/objective.py) trains ``loss``, ``score``
  gives the dev metrics and ``write_predictions`` writes OUT_DIR's predictions file; ``task_meta`` is saved
  with the model (``config.json`` "task", with ``"type": NAME``) so later commands know the type.
* ``leanbert distill --stage task``: the student gets ``head`` with ``head_options(spec)``; the teacher must
  have the same; the prediction-layer term is ``distill_loss``.
* ``leanbert export``: transformers' class is ``<Family><hf_suffix>`` (``BertForQuestionAnswering``), the
  head's weights map through ``hf_names[family]``; the remote-code class is ``LeanBert<hf_suffix>``; the ONNX
  graph returns ``graph_outputs(out)`` named ``onnx_outputs``.
* ``leanbert predict``: ``predict`` (a ``PredictSpec``, when set) reads the input, encodes it and formats the
  model's outputs; predict/tasks.py opens the model on any backend. The sequence type leaves it None and
  uses predict/classifier.py.

Plugging in a task type (developer note, e.g. token classification or multiple choice):

1. The head: a ``nn.Module`` taking what ``LeanBertModel`` offers (``hidden``, ``pooled``, ``attention_mask``,
   or tensors passed as ``head_inputs``) and a ``register_head(name, cls, inputs, output)`` call in
   ``leanbert/model/heads/task.py`` (imported by the model package, so saved models load without importing
   ``leanbert.tasks``). Its output is a new ``ModelOutput`` name (``token_logits``) or ``logits``.
2. One file ``leanbert/tasks/<name>.py`` that builds a ``TaskType`` (all fields below) and calls
   ``register_task_type(...)`` at import time; add the module name to ``BUILT_IN`` in ``tasks/__init__.py``.
   ``load`` returns a ``TaskData`` (tasks/glue.py) with ``kind`` = your type's name and ``files`` (or
   examples with a ``path``); its spec needs ``name``, ``main_metric``, ``metric_names`` and ``recipe`` (a
   ``Recipe``, tasks/recipe.py: the type's default settings). Task-specific ``data.*`` keys: subclass
   ``FinetuneDataConfig`` (tasks/recipe.py) and pass it as ``data_config``. Targets travel in
   ``Batch.targets`` (a dict of tensors your collator fills). See
   ``tasks/sequence.py`` (classification, its pieces beside it), ``tasks/qa.py`` (a full example: windows,
   post-processing, own metrics) and tests/tasks/test_toy_task_type.py (a whole type in one test file).
3. Export needs nothing else for the native classes when ``hf_names`` is right; the remote-code wrapper
   ``LeanBert<hf_suffix>`` comes from one row in ``export/remote_wrapper.TASK_CLASSES``.
4. A saved model's ``task.type`` picks the type when several share a head (``task_type_of(heads, saved)``); a
   Hugging Face directory is matched by its ``architectures`` suffix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from leanbert.errors import UserError


@dataclass(frozen=True)
class TaskRequest:
    """What the command line says about the task: ``--task`` and the data options."""

    task: str
    data: str | Path | None = None
    train: str | Path | None = None
    dev: str | Path | None = None
    text_columns: str | None = None
    label_column: str | None = None
    regression: bool = False


@dataclass
class EncodedTask:
    """A task's examples as model inputs: the training features, each dev split's, and their collator.
    ``kind`` is the task type's name; ``context`` holds what the type's ``score`` needs besides the features
    (QA: each dev split's examples and the window -> question map)."""

    spec: Any
    train: list
    dev: dict[str, list]
    collator: Callable[[Sequence[Any]], Any]
    max_seq_len: int
    kind: str = "sequence"
    context: dict[str, Any] = field(default_factory=dict)


# Signatures of the TaskType callables (``Any`` where the value is the type's own class).
Loader = Callable[[TaskRequest], Any]  # -> a TaskData (tasks/glue.py) (spec, train, dev, kind=name, files)
Encode = Callable[[Any, Path, Any, Any, bool], EncodedTask]  # (TaskData, tokenizer dir, data config, ModelConfig, progress)
Loss = Callable[[Any, Any], Any]  # (ModelOutput, Batch) -> objectives.base.Output
DistillLoss = Callable[[Any, Any, Any, float, float], torch.Tensor]  # (student, teacher ModelOutput, Batch, T, w)
Score = Callable[[Any, EncodedTask, int, Any], tuple[dict[str, float], dict[str, Any]]]  # (model, data, bs, env)
WritePredictions = Callable[[Path, EncodedTask, dict[str, Any]], None]  # (OUT_DIR, data, split -> predictions)


@dataclass(frozen=True)
class PredictSpec:
    """How ``leanbert predict`` runs a model of a task type; predict/tasks.py opens the model (leanbert,
    Hugging Face or ONNX), runs it and writes the file, the type does the rest:

    read(source, stdin) -> examples          the input file (``-``: stdin); bad rows raise UserError.
    encode(examples, tokenizer_dir, task_meta) -> (features, collator, context)   task_meta: the model's
                                             saved "task" ({} when it saved none, e.g. a Hugging Face model) plus the model's "max_positions".
    format(outputs, features, context) -> text   outputs: per feature, {onnx output name: array}, token-level
                                             outputs trimmed to the feature's length.
    """

    read: Callable[[str, Any], list]
    encode: Callable[[list, Path, dict[str, Any]], tuple[list, Callable, Any]]
    format: Callable[[list[dict[str, Any]], list, Any], str]


@dataclass(frozen=True)
class TaskType:
    """One kind of task (module docstring).

    name:           the type's name, saved as the model's ``task.type``.
    aliases:        the ``--task`` values it answers to besides ``name``.
    head:           the model head it trains (``model.heads`` entry).
    hf_suffix:      transformers' class suffix: ``ForSequenceClassification``, ``ForQuestionAnswering``, ...
    hf_names:       family -> {leanbert head path (``span.qa_outputs``): transformers module name}.
    output_layer:   the head path whose output width is ``num_labels`` (read back when importing HF weights).
    head_options:   spec -> ModelConfig fields of the head (``{"num_labels": 3}``).
    data_config:    the ``data.*`` config class (FinetuneDataConfig or a subclass with the type's own keys).
    load, encode, loss, distill_loss, score, write_predictions: see the signatures above.
    task_meta:      EncodedTask -> the "task" dict saved with the model (``type`` is added for you).
    onnx_outputs:   output name -> dynamic axes, in graph order; ``graph_outputs`` returns the tensors.
    hf_config:      ModelConfig -> extra transformers config keys (num_labels, problem_type).
    predict:        None (predict/classifier.py's path), or a ``PredictSpec``.
    logits_per_row: each encoded row is one example scored by one (num_labels,) logits vector (a classifier
                    over a text or text pair). Task distillation then caches the teacher's logits per row
                    (distill.teacher_cache) and lets ``--unlabeled`` text join as extra rows; QA windows,
                    token tags and option groups are not such rows.
    named_classes:  the examples' ``label`` indexes ``spec.labels``, class names that task distillation
                    matches to the teacher's saved label names (renumbering, ``data.label_map``).
    """

    name: str
    head: str
    hf_suffix: str
    hf_names: Mapping[str, Mapping[str, str]]
    output_layer: str
    head_options: Callable[[Any], dict[str, Any]]
    data_config: type
    load: Loader
    encode: Encode
    loss: Loss
    distill_loss: DistillLoss
    score: Score
    write_predictions: WritePredictions
    task_meta: Callable[[EncodedTask], dict[str, Any]]
    onnx_outputs: Mapping[str, Mapping[int, str]]
    graph_outputs: Callable[[Any], tuple[torch.Tensor, ...]]
    hf_config: Callable[[Any], dict[str, Any]]
    aliases: tuple[str, ...] = ()
    predict: PredictSpec | None = None
    logits_per_row: bool = False
    named_classes: bool = False


TASK_TYPES: dict[str, TaskType] = {}
FALLBACK = "sequence"  # the type of any --task name no other type claims (GLUE names, custom)


def require_train_dev(request: TaskRequest, files: str, fields: str) -> None:
    """The request check of a task type that reads its own --train/--dev files (``files`` says what they hold,
    ``fields`` what the type reads from them): the sequence-only flags are refused."""
    if request.train is None or request.dev is None:
        raise UserError(f"--task {request.task} needs --train FILE and --dev FILE ({files})")
    if request.data is not None or request.text_columns or request.label_column or request.regression:
        raise UserError(f"--task {request.task} reads {fields} from --train/--dev; --data, --text-columns, "
                        "--label-column and --regression are for sequence tasks")


def register_task_type(task_type: TaskType) -> None:
    """Make ``task_type`` available to every command (call it when your module is imported)."""
    if task_type.name in TASK_TYPES:
        raise ValueError(f"task type {task_type.name!r} is already registered")
    taken = {alias for t in TASK_TYPES.values() for alias in (t.name, *t.aliases)}
    clash = taken & {task_type.name, *task_type.aliases}
    if clash:
        raise ValueError(f"task type {task_type.name!r}: the name(s) {sorted(clash)} are taken")
    TASK_TYPES[task_type.name] = task_type


def get_task_type(name: str) -> TaskType:
    """A registered type by its name (saved models name it in ``task.type``)."""
    if name not in TASK_TYPES:
        raise UserError(f"unknown task type {name!r}; known: {', '.join(TASK_TYPES)}")
    return TASK_TYPES[name]


def task_type_for(task: str) -> TaskType:
    """The type that handles ``--task task``: the one naming it, else the sequence type (GLUE names,
    custom), which reports unknown names itself."""
    key = task.strip().lower()
    for task_type in TASK_TYPES.values():
        if task_type.name != FALLBACK and key in (task_type.name, *task_type.aliases):
            return task_type
    return TASK_TYPES[FALLBACK]


def task_type_of(heads: Sequence[str], saved: Any = None) -> TaskType | None:
    """The type of a model with ``heads`` (None for a pretraining model): ``saved`` (the model's saved
    ``task.type``) when it is registered and its head is there (types may share a head), else the first type
    whose head the model carries."""
    if isinstance(saved, str) and saved in TASK_TYPES and TASK_TYPES[saved].head in heads:
        return TASK_TYPES[saved]
    for task_type in TASK_TYPES.values():
        if task_type.head in heads:
            return task_type
    return None


def other_task_names() -> list[str]:
    """The ``--task`` names of the types other than sequence (for help and error messages)."""
    return [name for t in TASK_TYPES.values() if t.name != FALLBACK for name in (t.name, *t.aliases)]
