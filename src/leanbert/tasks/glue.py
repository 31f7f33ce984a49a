"""GLUE-format tasks: what each task's files look like, how to score it, and a default fine-tuning recipe.

Column layouts follow the official GLUE distribution (``download_glue_data.py``): files with a header are
read by header names, CoLA (no header) by position. ``load_task`` returns typed ``Example``s;
``load_custom`` does the same for a user's own TSV/CSV/JSONL files (see ``custom.py``).

Each task's recipe (``recipe.Recipe``) starts from the fine-tuning defaults in recipe.py (ELECTRA's GLUE
recipe) and changes only the epochs: 10 for the small RTE and STS-B sets (as ELECTRA does), 5 for CoLA and
MRPC because compact models need more passes over them. Every value can be overridden with ``key=value``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import leanbert.tasks.metrics as metrics_lib
from leanbert.errors import UserError
from leanbert.tasks.readers import Column, read_rows
from leanbert.tasks.recipe import Recipe


@dataclass(frozen=True)
class Example:
    """One labelled text or text pair. ``label`` is an index into ``TaskSpec.labels`` (classification) or a
    float (regression). ``path``/``line`` say where the row came from, for messages."""

    text_a: str
    text_b: str | None
    label: int | float
    path: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class TaskSpec:
    """Everything a fine-tuning run needs to know about a task.

    text_columns: one or two columns (header names, or field indices when ``header`` is False).
    labels:       label strings in index order, or None for a regression task (one float output).
    metrics:      metric names computed on every dev split (see ``metrics.METRICS``).
    dev_files:    split name -> file name (relative to the task folder, or a full path for custom tasks).
                  With several splits, metric names get a ``_<split>`` suffix (MNLI: accuracy_matched).
    """

    name: str
    dirname: str
    text_columns: tuple[Column, ...]
    label_column: Column
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    train_file: str = "train.tsv"
    dev_files: Mapping[str, str] = field(default_factory=lambda: {"dev": "dev.tsv"})
    header: bool = True
    num_fields: int | None = None  # fields per row for files without a header
    fmt: str = "tsv"
    recipe: Recipe = field(default_factory=Recipe)

    @property
    def regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        """Classifier outputs: 1 for regression (Hugging Face's convention)."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def metric_names(self) -> list[str]:
        """The keys ``compute_metrics`` returns, in order."""
        splits = list(self.dev_files)
        if len(splits) == 1:
            return list(self.metrics)
        return [f"{m}_{s}" for s in splits for m in self.metrics]

    @property
    def main_metric(self) -> str:
        """The metric to report first / select on: the first metric on the first dev split."""
        return self.metric_names[0]

    def label_name(self, label: int | float) -> str:
        """The label string for an index (classification) or the number as text (regression)."""
        if self.labels is None:
            return f"{float(label):.6g}"
        return self.labels[int(label)]

    def compute_metrics(self, outputs: Mapping[str, tuple[Any, Any]]) -> dict[str, float]:
        """``outputs``: split name -> (predictions, gold labels); see ``metrics.split_metrics``."""
        return metrics_lib.split_metrics(self.metrics, outputs)


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
# Label order as in Hugging Face datasets' glue/mnli, so exported id2label maps match the Hub's models.
_MNLI = ("entailment", "neutral", "contradiction")

GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        # CoLA has no header: source, label, original mark, sentence.
        TaskSpec("cola", "CoLA", (3,), 1, _BINARY, ("mcc", "accuracy"), header=False, num_fields=4,
                 recipe=Recipe(epochs=5)),
        TaskSpec("sst2", "SST-2", ("sentence",), "label", _BINARY, ("accuracy",)),
        TaskSpec("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", _BINARY, ("f1", "accuracy"),
                 recipe=Recipe(epochs=5)),
        TaskSpec("stsb", "STS-B", ("sentence1", "sentence2"), "score", None, ("pearson", "spearman"),
                 recipe=Recipe(epochs=10)),
        TaskSpec("qqp", "QQP", ("question1", "question2"), "is_duplicate", _BINARY, ("f1", "accuracy")),
        TaskSpec("mnli", "MNLI", ("sentence1", "sentence2"), "gold_label", _MNLI, ("accuracy",),
                 dev_files={"matched": "dev_matched.tsv", "mismatched": "dev_mismatched.tsv"}),
        TaskSpec("qnli", "QNLI", ("question", "sentence"), "label", _NLI2, ("accuracy",)),
        TaskSpec("rte", "RTE", ("sentence1", "sentence2"), "label", _NLI2, ("accuracy",),
                 recipe=Recipe(epochs=10)),
        TaskSpec("wnli", "WNLI", ("sentence1", "sentence2"), "label", _BINARY, ("accuracy",)),
    )
}
TASK_NAMES = (*GLUE_TASKS, "custom")


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def get_task(name: str) -> TaskSpec:
    """The spec of a GLUE task by name (``sst2``; ``SST-2`` and ``sst_2`` work too)."""
    for spec in GLUE_TASKS.values():
        if _norm(name) in (spec.name, _norm(spec.dirname)):
            return spec
    if _norm(name) == "custom":
        raise UserError("--task custom needs --train, --dev, --text-columns and --label-column")
    raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}")


def resolve_task_dir(spec: TaskSpec, data_dir: str | Path) -> Path:
    """The folder holding the task's files: ``data_dir`` itself if it has them, else its sub-folder named
    like the task (GLUE's ``SST-2``; case, ``-`` and ``_`` ignored), so both ``--data glue`` and
    ``--data glue/SST-2`` work."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: no such directory (expected a GLUE data folder)")
    if (data_dir / spec.train_file).is_file():
        return data_dir
    for child in sorted(data_dir.iterdir()):
        if child.is_dir() and _norm(child.name) in (spec.name, _norm(spec.dirname)):
            return child
    raise UserError(f"{data_dir}: found neither {spec.train_file} nor a {spec.dirname}/ folder "
                    f"for task {spec.name}")


def parse_label(spec: TaskSpec, value: Any, where: str, labels: tuple[str, ...] | None = None) -> int | float:
    """A raw label field as an index into ``labels`` (default ``spec.labels``) or, for regression, a finite
    float; UserError naming ``where`` otherwise."""
    labels = spec.labels if labels is None else labels
    if spec.regression:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise UserError(f"{where}: expected a number in column {spec.label_column!r}, found {value!r}")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise UserError(f"{where}: expected a finite number in column {spec.label_column!r}, "
                            f"found {value!r}")
        return number
    key = label_key(value, where, spec.label_column)
    try:
        return labels.index(key)
    except ValueError:
        seen = " (the labels of the training file)" if spec.name == "custom" else ""
        raise UserError(f"{where}: unknown label {key!r} in column {spec.label_column!r}; expected one of "
                        f"{', '.join(labels)}{seen}") from None


def label_key(value: Any, where: str, column: Column) -> str:
    """A classification label as a string: strings without surrounding spaces, JSON integers and booleans
    as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise UserError(f"{where}: expected a non-empty string or integer label in column {column!r}, found {value!r}")


def _text(value: Any, where: str, column: Column) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where}: expected text in column {column!r}, found {value!r}")
    return value


def read_examples(spec: TaskSpec, path: str | Path, labels: tuple[str, ...] | None = None) -> list[Example]:
    """All examples of one file in ``spec``'s layout. Raises UserError for a malformed row."""
    columns = (*spec.text_columns, spec.label_column)
    examples = []
    for line, values in read_rows(path, spec.fmt, columns, header=spec.header, num_fields=spec.num_fields):
        where = f"{path}:{line}"
        texts = [_text(v, where, c) for v, c in zip(values[:-1], spec.text_columns)]
        label = parse_label(spec, values[-1], where, labels)
        examples.append(Example(texts[0], texts[1] if len(texts) == 2 else None, label, str(path), line))
    if not examples:
        raise UserError(f"{path}: no examples (only a header or blank lines)")
    return examples


@dataclass
class TaskData:
    """A task's spec with its training examples and the examples of each dev split. ``kind`` names the task
    type (``leanbert.tasks``) that reads, encodes and scores them; other types bring their own spec and
    example classes. ``files``: the files they were read from, when the examples carry no ``path``."""

    spec: TaskSpec
    train: list[Example]
    dev: dict[str, list[Example]]
    kind: str = "sequence"
    files: tuple[str, ...] = ()


def load_task(name: str, data_dir: str | Path) -> TaskData:
    """Load a GLUE task from ``data_dir`` (the GLUE root or the task's own folder)."""
    spec = get_task(name)
    folder = resolve_task_dir(spec, data_dir)
    missing = [f for f in (spec.train_file, *spec.dev_files.values()) if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder}: missing {', '.join(missing)} for task {spec.name}")
    train = read_examples(spec, folder / spec.train_file)
    dev = {split: read_examples(spec, folder / file) for split, file in spec.dev_files.items()}
    return TaskData(spec, train, dev)
