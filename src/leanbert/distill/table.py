"""Whole rows of a task file, read and written back in the same format, for ``leanbert augment``.
Plain text (``text``: one example, or a tab-separated pair, per line; no header) is read and written as a
header-less TSV.

The fine-tuning readers (``tasks/readers.py``) return only the columns a task uses; augmentation must copy
every other column (labels, ids, GLUE's extra MNLI fields) unchanged, so it reads whole rows here, with the
same rules: TSV split on tabs only (no quoting), CSV through the ``csv`` module with a header, JSONL one object
per line. The output is written to a temporary sibling and renamed at the end: it appears complete or not at
all.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from leanbert.atomic import clean_stale_temp_dirs, current_umask, temp_file_path
from leanbert.errors import UserError
from leanbert.safe_io import json_object_line
from leanbert.tasks.readers import Column, read_tsv

Record = list[str] | dict[str, Any]


def _first_line(path: Path) -> str:
    with path.open("rb") as handle:
        for raw in handle:
            text = raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
            if text:
                return text
    raise UserError(f"{path}: the file is empty")


def read_records(path: str | Path, fmt: str, header: bool = True
                 ) -> tuple[list[str] | None, Iterator[tuple[int, Record]]]:
    """(header names or None, rows as (line, record)). TSV/CSV records are lists of every field, JSONL
    records are the parsed objects."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if fmt in ("tsv", "text"):  # text: plain lines, one text (or a tab-separated pair) each, no header
        header = header and fmt == "tsv"
        num_fields = len(_first_line(path).split("\t"))
        rows = read_tsv(path, list(range(num_fields)), header=False, num_fields=num_fields)
        if not header:
            return None, rows
        first = next(rows)
        return first[1], rows
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "jsonl":
        return None, _read_jsonl(path)
    raise UserError(f"unknown file format {fmt!r}; choose one of tsv, csv, jsonl, text")


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, Record]]]:
    handle = path.open("r", encoding="utf-8-sig", newline="")
    reader = csv.reader(handle, strict=True)
    names: list[str] | None = None
    try:
        for row in reader:
            if row and any(field.strip() for field in row):
                names = row
                break
    except (csv.Error, UnicodeDecodeError) as err:
        handle.close()
        raise UserError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    if names is None:
        handle.close()
        raise UserError(f"{path}: the file is empty; expected a header line")

    def rows() -> Iterator[tuple[int, Record]]:
        with handle:
            start = reader.line_num + 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as err:
                    raise UserError(f"{path}:{start}: malformed CSV ({err})") from None
                line, start = start, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(names):
                    raise UserError(f"{path}:{line}: expected {len(names)} fields like the header "
                                    f"({', '.join(names)}), found {len(row)}")
                yield line, row

    return names, rows()


def _read_jsonl(path: Path) -> Iterator[tuple[int, Record]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").lstrip("\ufeff").strip()
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{number}: not valid UTF-8 ({err.reason})") from None
            if not text:
                continue
            record = json_object_line(path, number, text)
            yield number, record


def text_keys(path: str | Path, fmt: str, header: list[str] | None, columns: Sequence[Column]) -> list[Any]:
    """Where each text column lives in a record: a field index (TSV/CSV) or a key (JSONL)."""
    if fmt == "jsonl":
        return [str(c) for c in columns]
    keys = []
    for column in columns:
        if header is None:
            keys.append(int(column))
        elif header.count(str(column)) != 1:
            found = "has no" if str(column) not in header else "repeats the"
            raise UserError(f"{path}: the header {found} column {column!r}; it has: "
                            f"{', '.join(repr(h) for h in header)}")
        else:
            keys.append(header.index(str(column)))
    return keys


def record_texts(path: str | Path, line: int, record: Record, keys: Sequence[Any]) -> list[str]:
    """The text fields of one record, checked to be strings."""
    texts = []
    for key in keys:
        if isinstance(record, dict) and key not in record:
            raise UserError(f"{path}:{line}: missing field {key!r}; the object has: "
                            f"{', '.join(repr(k) for k in record)}")
        if isinstance(record, list) and key >= len(record):
            raise UserError(f"{path}:{line}: expected at least {key + 1} fields, found {len(record)}")
        value = record[key]
        if not isinstance(value, str):
            raise UserError(f"{path}:{line}: expected text in column {key!r}, found {value!r}")
        texts.append(value)
    return texts


def with_texts(record: Record, keys: Sequence[Any], texts: Sequence[str]) -> Record:
    """A copy of ``record`` with its text fields replaced."""
    copy = dict(record) if isinstance(record, dict) else list(record)
    for key, text in zip(keys, texts):
        copy[key] = text
    return copy


class RecordWriter:
    """Writes records in ``fmt`` to a temporary sibling of ``path`` (its folder is created); ``commit()``
    renames it into place, ``close()`` without commit removes it."""

    def __init__(self, path: str | Path, fmt: str):
        self.path = Path(path)
        self.fmt = fmt
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temp_dirs(self.path.parent)  # what a killed augment left here
        self.tmp = temp_file_path(self.path)
        newline = "" if fmt == "csv" else "\n"
        self.handle = self.tmp.open("w", encoding="utf-8", newline=newline)
        self.csv = csv.writer(self.handle, lineterminator="\n") if fmt == "csv" else None

    def write(self, record: Record) -> None:
        if self.fmt == "jsonl":
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.csv is not None:
            self.csv.writerow(record)
        else:
            self.handle.write("\t".join(record) + "\n")

    def commit(self) -> None:
        self.handle.close()
        os.chmod(self.tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() would not
        os.replace(self.tmp, self.path)

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        if self.tmp.exists():
            self.tmp.unlink()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
