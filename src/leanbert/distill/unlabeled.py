"""Unlabeled text for task distillation (``leanbert distill --stage task --unlabeled FILE``).

The teacher labels these rows with its soft targets; they carry no gold label, marked as ``UNLABELED``
(IGNORE_INDEX) for classification and NaN for regression, so ``tasks.prediction_loss`` applies the
gold-label share only to the labelled rows. A file is read as:

* .tsv / .csv / .jsonl: a table with the task's text columns (by header name; by field index for a task
  whose files have no header, e.g. GLUE's CoLA); every other column (a label, an id) is ignored;
* anything else (e.g. .txt): plain text, one example per line, or two tab-separated texts per line for a
  pair task. Empty lines are skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from leanbert.batch import IGNORE_INDEX
from leanbert.distill.table import read_records, record_texts, text_keys
from leanbert.errors import UserError
from leanbert.finetune.task_job import EncodedTask
from leanbert.paths import check_regular_file
from leanbert.tasks.encode import PairEncoder
from leanbert.tasks.glue import Example, TaskSpec
from leanbert.tasks.readers import decoded_lines, detect_format

UNLABELED = IGNORE_INDEX  # the label of an unlabeled classification row


def missing_label(spec: TaskSpec) -> int | float:
    """The label value that marks a row without a gold label for this task."""
    return float("nan") if spec.regression else UNLABELED


def unlabeled_format(path: str | Path) -> str:
    """tsv, csv or jsonl from a table suffix, else ``text`` (plain lines)."""
    try:
        return detect_format(path)
    except UserError:
        return "text"


def read_plain_lines(path: Path, num_texts: int) -> list[tuple[int, list[str]]]:
    """(line, texts) of a plain-text file: ``num_texts`` tab-separated texts per non-empty line."""
    rows = []
    for number, text in decoded_lines(path):
        text = text.rstrip("\n").removesuffix("\r")
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != num_texts:
            what = "one text per line" if num_texts == 1 else "two texts separated by a tab per line"
            raise UserError(f"{path}:{number}: expected {what} (the task has {num_texts} text "
                            f"column(s)), found {len(fields)} tab-separated fields")
        rows.append((number, fields))
    return rows


def read_unlabeled(path: str | Path, spec: TaskSpec) -> list[Example]:
    """The rows of one unlabeled file as Examples without a gold label (module docstring)."""
    path = Path(path)
    check_regular_file(path)
    fmt = unlabeled_format(path)
    num_texts = len(spec.text_columns)
    if fmt == "text":
        rows = read_plain_lines(path, num_texts)
    else:
        header = spec.header or fmt != "tsv"  # GLUE's header-less TSV (CoLA) is read by field index
        names, records = read_records(path, fmt, header=header)
        keys = text_keys(path, fmt, names, spec.text_columns)
        rows = [(line, record_texts(path, line, record, keys)) for line, record in records]
    if not rows:
        raise UserError(f"{path}: no unlabeled examples (the file holds no text rows)")
    label = missing_label(spec)
    return [Example(texts[0], texts[1] if num_texts == 2 else None, label, str(path), line)
            for line, texts in rows]


def read_unlabeled_files(paths: Sequence[str | Path], spec: TaskSpec) -> dict[str, list[Example]]:
    """path -> its unlabeled Examples, for every ``--unlabeled`` file in order (a file given twice is an
    error: it would silently double its weight)."""
    out: dict[str, list[Example]] = {}
    for path in paths:
        key = str(path)
        if key in out:
            raise UserError(f"--unlabeled {path}: given twice")
        out[key] = read_unlabeled(path, spec)
    return out


def training_mix(labelled: int, unlabeled: dict[str, int]) -> dict[str, object]:
    """The labelled/unlabeled counts of a training set, as metrics.json and the log show them."""
    total_unlabeled = sum(unlabeled.values())
    total = labelled + total_unlabeled
    return {"labelled": labelled, "unlabeled": total_unlabeled, "total": total,
            "unlabeled_share": round(total_unlabeled / total, 4) if total else 0.0,
            "unlabeled_files": dict(unlabeled)}


def add_unlabeled(data: EncodedTask, files: Sequence[str | Path], tokenizer_dir: Path,
                  progress: bool = False) -> tuple[EncodedTask, dict[str, object]]:
    """``data`` with the rows of the unlabeled ``files`` appended to its training set (tokenized like it),
    and the mix (``training_mix``)."""
    examples = read_unlabeled_files(files, data.spec)
    encoder = PairEncoder.from_dir(tokenizer_dir, data.max_seq_len)
    extra = []
    for path, rows in examples.items():
        extra.extend(encoder.encode(rows, progress=progress, desc=f"tokenize {Path(path).name}"))
    mix = training_mix(len(data.train), {path: len(rows) for path, rows in examples.items()})
    return dataclasses.replace(data, train=[*data.train, *extra]), mix


def describe_mix(mix: dict[str, object]) -> str:
    """One line for the log: sizes and shares."""
    files = mix["unlabeled_files"]
    parts = ", ".join(f"{Path(p).name} {n:,}" for p, n in files.items())  # type: ignore[union-attr]
    parts = f" ({parts})" if parts else ""
    return (f"training rows: {mix['labelled']:,} labelled + {mix['unlabeled']:,} unlabeled{parts} = "
            f"{mix['total']:,}, {100 * float(mix['unlabeled_share']):.1f}% without a gold label")
