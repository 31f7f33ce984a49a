"""Row readers for task files: TSV (split on tab only, no quoting), CSV (the ``csv`` module) and JSONL.

Each reader yields ``(line, values)`` for every data row: ``line`` is the 1-based line where the row starts
(for error messages) and ``values`` holds the requested columns in the requested order. Column requests are
header names, or 0-based field indices for a file without a header (GLUE's CoLA).

Why TSV is not read with the ``csv`` module: GLUE's STS-B, RTE and WNLI files hold unbalanced ``"``
characters; CSV quote handling would silently merge rows. Lines are split on ``\\n`` only (a stray ``\\r``
inside a field stays in the field), a trailing ``\\r`` is dropped (CRLF files) and a UTF-8 byte-order mark
at the start is ignored. Empty lines are skipped everywhere.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from leanbert.errors import UserError
from leanbert.paths import check_regular_file
from leanbert.safe_io import json_object_line

FORMATS = ("tsv", "csv", "jsonl")
_SUFFIXES = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "jsonl"}

Column = str | int


def detect_format(path: str | Path) -> str:
    """File format from the suffix: .tsv/.tab -> tsv, .csv -> csv, .jsonl/.ndjson/.json -> jsonl."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UserError(f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
                        f"expected one of {', '.join(sorted(_SUFFIXES))}")
    return _SUFFIXES[suffix]


def _check_file(path: Path) -> None:
    # says which: missing, a directory, a FIFO (reading one would block), a symlink loop
    check_regular_file(path)
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: permission denied")


def decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for every line of ``path`` as UTF-8 (a bad byte is FILE:LINE), a leading BOM dropped,
    line ends kept: the one line decoder of the text readers (tables, tag files, unlabeled text)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-empty line; splits on LF only, drops a final CR and a leading BOM."""
    for number, text in decoded_lines(path):
        text = text.rstrip("\n")
        if text.endswith("\r"):
            text = text[:-1]
        if text:
            yield number, text


def _resolve(path: Path, line: int, header: Sequence[str] | None, columns: Sequence[Column],
             num_fields: int | None) -> list[int]:
    """Map requested columns to field indices, with an error naming what the header offers."""
    indices = []
    for column in columns:
        if header is None:
            if not isinstance(column, int) or not 0 <= column < (num_fields or 0):
                raise UserError(f"{path}: column {column!r} must be a field index below {num_fields}")
            indices.append(column)
            continue
        matches = [i for i, name in enumerate(header) if name == column]
        if not matches:
            raise UserError(f"{path}:{line}: the header has no column {column!r}; "
                            f"it has: {', '.join(repr(h) for h in header)}")
        if len(matches) > 1:
            raise UserError(f"{path}:{line}: the header names column {column!r} {len(matches)} times")
        indices.append(matches[0])
    return indices


def _describe(header: Sequence[str] | None, count: int) -> str:
    return f"{count} fields" if header is None else f"{count} fields like the header ({', '.join(header)})"


def read_tsv(path: str | Path, columns: Sequence[Column], header: bool = True,
             num_fields: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """Rows of a tab-separated file. With ``header`` the first non-empty line names the columns and every
    row must have as many fields; without it every row must have ``num_fields`` fields."""
    path = Path(path)
    _check_file(path)
    lines = _lines(path)
    names: list[str] | None = None
    if header:
        first = next(lines, None)
        if first is None:
            raise UserError(f"{path}: the file is empty; expected a header line")
        header_line, text = first
        names = text.split("\t")
        num_fields = len(names)
        indices = _resolve(path, header_line, names, columns, num_fields)
    else:
        if num_fields is None:
            raise ValueError("read_tsv without a header needs num_fields")
        indices = _resolve(path, 0, None, columns, num_fields)
    for number, text in lines:
        fields = text.split("\t")
        if len(fields) != num_fields:
            raise UserError(f"{path}:{number}: expected {_describe(names, num_fields)} separated by tabs, "
                            f"found {len(fields)}")
        yield number, [fields[i] for i in indices]


def read_csv(path: str | Path, columns: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """Rows of a comma-separated file with a header line (quoting as in Python's ``csv`` module, so a quoted
    field may span lines; the reported line is the one where the row starts)."""
    path = Path(path)
    _check_file(path)
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        names: list[str] | None = None
        indices: list[int] = []
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise UserError(f"{path}:{start}: malformed CSV ({err})") from None
            except UnicodeDecodeError as err:
                raise UserError(f"{path}:{start}: not valid UTF-8 ({err.reason})") from None
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if names is None:
                names = row
                indices = _resolve(path, line, names, columns, len(names))
                continue
            if len(row) != len(names):
                raise UserError(f"{path}:{line}: expected {_describe(names, len(names))} separated by commas, "
                                f"found {len(row)}")
            yield line, [row[i] for i in indices]
        if names is None:
            raise UserError(f"{path}: the file is empty; expected a header line")


def read_jsonl(path: str | Path, columns: Sequence[str]) -> Iterator[tuple[int, list[Any]]]:
    """Rows of a JSON-lines file: one JSON object per line; values are returned as parsed (not converted)."""
    path = Path(path)
    _check_file(path)
    for number, text in _lines(path):
        record = json_object_line(path, number, text)
        missing = [c for c in columns if c not in record]
        if missing:
            raise UserError(f"{path}:{number}: missing field {missing[0]!r}; "
                            f"the object has: {', '.join(repr(k) for k in record)}")
        yield number, [record[c] for c in columns]


def read_rows(path: str | Path, fmt: str, columns: Sequence[Column], header: bool = True,
              num_fields: int | None = None) -> Iterator[tuple[int, list[Any]]]:
    """Dispatch on ``fmt`` (one of FORMATS)."""
    if fmt == "tsv":
        return read_tsv(path, columns, header=header, num_fields=num_fields)
    if not header:
        raise ValueError(f"{fmt} files are read by header names")
    if fmt == "csv":
        return read_csv(path, [str(c) for c in columns])
    if fmt == "jsonl":
        return read_jsonl(path, [str(c) for c in columns])
    raise UserError(f"unknown file format {fmt!r}; choose one of {', '.join(FORMATS)}")
