"""Reading corpora as a stream of lines with document boundaries, with bad input skipped and counted.

Formats: ``.txt`` (BERT's convention: one sentence or paragraph per line, a blank line between documents) and
``.jsonl`` (one JSON object per line, one document each, text in a field, default ``text``; newlines inside it
separate lines of the document). Either may be gzip-compressed (``.gz``). Inputs may be files, directories
(searched recursively) and glob patterns; they are expanded in sorted order so runs are reproducible.

Nothing here holds more than one line in memory: lines longer than ``max_line_bytes`` are skipped chunk by chunk.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from leanbert.errors import UserError
from leanbert.paths import why_not_regular

SUFFIXES = (".txt", ".jsonl", ".txt.gz", ".jsonl.gz")
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
SKIP_KINDS = ("empty_files", "binary_files", "unreadable_files", "invalid_utf8_lines", "binary_lines",
              "long_lines", "invalid_json_lines", "missing_field_lines")
_MAX_SAMPLES = 20  # messages kept (and printed) per kind; the rest are only counted


def _supported(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, directories and globs -> a sorted, de-duplicated list of corpus files (errors name the input)."""
    files: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(item) for name in names
                           if _supported(name) and os.path.isfile(os.path.join(root, name)))
            if not found:
                raise UserError(f"{item}: directory holds no corpus files ({', '.join(SUFFIXES)})")
            files.extend(found)
        elif os.path.isfile(item):
            if not _supported(item):
                raise UserError(f"{item}: unsupported file type; expected one of {', '.join(SUFFIXES)}")
            files.append(item)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p) and _supported(p))
            if not found:
                raise UserError(f"{item}: the pattern matches no corpus files ({', '.join(SUFFIXES)})")
            files.extend(found)
        else:  # missing, or a FIFO, a device, a symlink loop: say which (reading a FIFO would block)
            raise UserError(f"{item}: {why_not_regular(item)}")
    seen: set[str] = set()
    out = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            out.append(Path(f))
    return out


@dataclass
class SkipStats:
    """Counts of skipped input by kind, with the first messages of each kind (file and line named)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_KINDS, 0))
    messages: list[str] = field(default_factory=list)
    report: Callable[[str], None] | None = None  # called with each kept message (e.g. tqdm.write)

    def skip(self, kind: str, where: str, why: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= _MAX_SAMPLES:
            message = f"{where}: {why}; skipped"
            self.messages.append(message)
            if self.report:
                self.report(message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _open(path: Path):
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller via the returned object
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def _raw_lines(f, path: Path, max_line_bytes: int, stats: SkipStats) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the newline) or (line number, None) for a skipped over-long line."""
    lineno = 0
    while True:
        chunk = f.readline(max_line_bytes + 1)
        if not chunk:
            return
        lineno += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):  # drain the rest of the line without keeping it
                chunk = f.readline(1 << 20)
            stats.skip("long_lines", f"{path}:{lineno}", f"line longer than {max_line_bytes} bytes")
            yield lineno, None
            continue
        yield lineno, chunk.rstrip(b"\r\n")


def iter_file_lines(path: Path, stats: SkipStats, text_field: str = "text",
                    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[bool, str]]:
    """Yield ``(starts_document, line)`` for the non-empty lines of one corpus file.

    Bad files (empty, binary, unreadable, corrupt gzip) and bad lines (invalid UTF-8, NUL bytes, too long,
    invalid JSON, missing text field) are skipped and counted in ``stats`` with a message naming file and line.
    """
    is_json = path.name.lower().removesuffix(".gz").endswith(".jsonl")
    try:
        f = _open(path)
    except OSError as err:
        stats.skip("unreadable_files", str(path), f"cannot open ({err.strerror})")
        return
    with f:
        try:
            head = f.peek(8192)[:8192] if hasattr(f, "peek") else b""
        except (OSError, EOFError, zlib.error) as err:
            stats.skip("unreadable_files", str(path), f"cannot read ({err})")
            return
        if not head:
            stats.skip("empty_files", str(path), "empty file")
            return
        if b"\x00" in head:
            stats.skip("binary_files", str(path), "binary file (NUL bytes), not text")
            return
        new_doc = True
        try:
            for lineno, raw in _raw_lines(f, path, max_line_bytes, stats):
                if raw is None:
                    continue
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not text
                    raw = raw[3:]
                if b"\x00" in raw:
                    stats.skip("binary_lines", f"{path}:{lineno}", "NUL bytes in line")
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    stats.skip("invalid_utf8_lines", f"{path}:{lineno}", f"invalid UTF-8 at byte {err.start}")
                    continue
                if not is_json:
                    text = text.strip()
                    if not text:
                        new_doc = True
                        continue
                    yield new_doc, text
                    new_doc = False
                    continue
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except ValueError as err:
                    stats.skip("invalid_json_lines", f"{path}:{lineno}", f"invalid JSON ({err.msg})")
                    continue
                value = record.get(text_field) if isinstance(record, dict) else None
                if not isinstance(value, str):
                    why = (f"field {text_field!r} is missing" if not isinstance(record, dict)
                           or text_field not in record else f"field {text_field!r} is not a string")
                    stats.skip("missing_field_lines", f"{path}:{lineno}", why)
                    continue
                first = True
                for part in value.split("\n"):
                    part = part.strip()
                    if part:
                        yield first, part
                        first = False
        except (OSError, EOFError, zlib.error) as err:
            stats.skip("unreadable_files", str(path), f"read error, rest of file skipped ({err})")


def iter_corpus_lines(files: list[Path], stats: SkipStats, text_field: str = "text",
                      max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[bool, str]]:
    """``iter_file_lines`` over many files; a new file always starts a new document."""
    for path in files:
        first = True
        for starts, line in iter_file_lines(path, stats, text_field, max_line_bytes):
            yield starts or first, line
            first = False
