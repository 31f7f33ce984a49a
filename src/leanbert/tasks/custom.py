"""The ``custom`` task: a user's own TSV, CSV or JSONL files, columns chosen by name.

    --task custom --train FILE --dev FILE --text-columns A[,B] --label-column C [--regression]

The label set is collected from the training file: all-integer labels sort by value ("2" before "10"),
other labels sort as strings, so indices do not depend on row order. A dev label never seen in training is
an error. With two labels, ``f1`` treats the second label in that order as the positive class
("1" of 0/1, "pos" of neg/pos, "yes" of no/yes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from leanbert.errors import UserError
from leanbert.tasks.glue import TaskData, TaskSpec, label_key, read_examples
from leanbert.tasks.readers import FORMATS, detect_format, read_rows
from leanbert.tasks.recipe import Recipe


def parse_columns(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"A"`` or ``"A,B"`` (or a sequence) -> one or two column names."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    if not 1 <= len(names) <= 2 or not all(names):
        raise UserError(f"--text-columns={text!r}: expected one or two column names separated by a comma, "
                        "e.g. sentence or question,passage")
    return tuple(names)


def _sorted_labels(keys: set[str]) -> tuple[str, ...]:
    def is_int(key: str) -> bool:
        return key.strip().lstrip("+-").isdigit()

    if all(is_int(k) for k in keys):
        return tuple(sorted(keys, key=lambda k: (int(k), k)))
    return tuple(sorted(keys))


def collect_labels(path: str | Path, fmt: str, label_column: str,
                   text_columns: Sequence[str] = ()) -> tuple[str, ...]:
    """The distinct labels of a file, in index order (see the module docstring). ``text_columns`` are
    only checked to exist, so a wrong column name is reported before a label problem."""
    keys = {label_key(values[-1], f"{path}:{line}", label_column)
            for line, values in read_rows(path, fmt, [*text_columns, label_column])}
    if len(keys) < 2:
        raise UserError(f"{path}: column {label_column!r} holds {len(keys)} distinct label(s) "
                        f"({', '.join(sorted(keys)) or 'none'}); classification needs at least 2 "
                        "(use --regression for a numeric target)")
    return _sorted_labels(keys)


def custom_spec(train: str | Path, dev: str | Path, text_columns: str | Sequence[str], label_column: str,
                regression: bool = False, fmt: str | None = None) -> TaskSpec:
    """The TaskSpec of a custom task; reads the training file once to collect the labels."""
    columns = parse_columns(text_columns)
    label_column = label_column.strip()
    if not label_column:
        raise UserError("--label-column must name a column")
    if label_column in columns:
        raise UserError(f"--label-column {label_column!r} is also a text column")
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown file format {fmt!r}; choose one of {', '.join(FORMATS)}")
    train_fmt = fmt or detect_format(train)
    dev_fmt = fmt or detect_format(dev)
    if train_fmt != dev_fmt:
        raise UserError(f"--train {train} is {train_fmt} but --dev {dev} is {dev_fmt}; use one format")
    if regression:
        labels, metrics = None, ("pearson", "spearman")
    else:
        labels = collect_labels(train, train_fmt, label_column, columns)
        metrics = ("accuracy", "f1", "mcc") if len(labels) == 2 else ("accuracy", "mcc")
    return TaskSpec("custom", "", columns, label_column, labels, metrics, train_file=str(train),
                    dev_files={"dev": str(dev)}, fmt=train_fmt, recipe=Recipe())


def load_custom(train: str | Path, dev: str | Path, text_columns: str | Sequence[str], label_column: str,
                regression: bool = False, fmt: str | None = None) -> TaskData:
    """Load a user's train and dev files (format from the suffix unless ``fmt`` is given)."""
    spec = custom_spec(train, dev, text_columns, label_column, regression, fmt)
    train_examples = read_examples(spec, train)
    dev_examples = read_examples(spec, dev)
    return TaskData(spec, train_examples, {"dev": dev_examples})
