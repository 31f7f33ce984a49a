"""On-disk format of a prepared dataset, and its reader.

```
DATA_DIR/
  manifest.json                      format version, tokenizer fingerprint, dtype, counts, sources, skipped input
  tokenizer/                         copy of the tokenizer it was prepared with
  train/shard-00000.tokens.bin       token ids of every line, back to back (uint16, or uint32 for big vocabularies)
  train/shard-00000.lines.bin        int64 (num_lines + 1,): token offset where each line starts, then the end
  train/shard-00000.docs.bin         int64 (num_docs + 1,): line index where each document starts, then num_lines
  valid/...                          the same for the validation split
```
All arrays are little-endian raw binaries, memory-mapped on read (no pickle, nothing executed). A document never
spans two shards. ``[CLS]``/``[SEP]`` are not stored; instances add them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanbert.errors import UserError

FORMAT = "leanbert-tokens"
FORMAT_VERSION = 1
SPLITS = ("train", "valid")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 65536 else np.dtype("<u4")


class ShardWriter:
    """Appends lines to one shard's three files (streamed; nothing is kept in memory)."""

    def __init__(self, directory: Path, index: int, dtype: np.dtype):
        self.name = f"shard-{index:05d}"
        self.dtype = dtype
        self.files = {kind: open(directory / f"{self.name}.{kind}.bin", "wb")  # noqa: SIM115
                      for kind in ("tokens", "lines", "docs")}
        self.num_tokens = 0
        self.num_lines = 0
        self.num_docs = 0
        np.zeros(1, dtype="<i8").tofile(self.files["lines"])

    def append(self, tokens: np.ndarray, lengths: np.ndarray, doc_starts: np.ndarray) -> None:
        """tokens: (N,) ids of the lines; lengths: (L,) tokens per line; doc_starts: (L,) bool."""
        tokens.astype(self.dtype, copy=False).tofile(self.files["tokens"])
        (self.num_tokens + np.cumsum(lengths, dtype=np.int64)).astype("<i8").tofile(self.files["lines"])
        starts = np.flatnonzero(doc_starts).astype(np.int64) + self.num_lines
        starts.astype("<i8").tofile(self.files["docs"])
        self.num_tokens += int(lengths.sum())
        self.num_lines += len(lengths)
        self.num_docs += len(starts)

    def close(self) -> dict:
        np.array([self.num_lines], dtype="<i8").tofile(self.files["docs"])
        for f in self.files.values():
            f.close()
        return {"name": self.name, "num_tokens": self.num_tokens, "num_lines": self.num_lines,
                "num_docs": self.num_docs}


@dataclass
class Shard:
    tokens: np.ndarray  # (num_tokens,) uint16/uint32, memory-mapped
    lines: np.ndarray  # (num_lines + 1,) int64 token offsets
    docs: np.ndarray  # (num_docs + 1,) int64 line offsets

    @property
    def num_docs(self) -> int:
        return len(self.docs) - 1


def _memmap(path: Path, dtype, count: int) -> np.ndarray:
    expected = count * np.dtype(dtype).itemsize
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"{path}: missing; the dataset is incomplete, prepare it again") from None
    if size != expected:
        raise UserError(f"{path}: {size} bytes, the manifest says {expected}; the dataset is corrupt, "
                        "prepare it again")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


class PreparedDataset:
    """Read side of a prepared dataset: ``split(name)`` gives its memory-mapped shards."""

    def __init__(self, directory: str | Path, fingerprint: str | None = None):
        self.directory = Path(directory)
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.is_file():
            raise UserError(f"{self.directory}: not a prepared dataset (no manifest.json); "
                            "create one with `leanbert prepare`")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise UserError(f"{manifest_path}: invalid JSON ({err})") from None
        if self.manifest.get("format") != FORMAT or self.manifest.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{manifest_path}: format {self.manifest.get('format')!r} version "
                            f"{self.manifest.get('format_version')!r} is not {FORMAT!r} version {FORMAT_VERSION}")
        self.fingerprint = self.manifest["tokenizer"]["fingerprint"]
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise UserError(
                f"{self.directory} was prepared with tokenizer {self.fingerprint[:12]} "
                f"({self.manifest['tokenizer'].get('source', '?')}) but the tokenizer given has fingerprint "
                f"{fingerprint[:12]}; use the dataset's own tokenizer ({self.directory / 'tokenizer'}) "
                "or prepare the corpus again with this one")
        self.dtype = np.dtype(self.manifest["dtype"])
        self.vocab_size = int(self.manifest["tokenizer"]["vocab_size"])
        self._splits: dict[str, list[Shard]] = {}

    def split(self, name: str) -> list[Shard]:
        if name not in self._splits:
            info = self.manifest["splits"].get(name)
            if info is None or info["num_docs"] == 0:
                raise UserError(f"{self.directory}: the {name!r} split is empty "
                                f"(prepare with --valid-fraction > 0 for a validation split)")
            shards = []
            for entry in info["shards"]:
                base = self.directory / name / entry["name"]
                shards.append(Shard(
                    tokens=_memmap(base.with_name(base.name + ".tokens.bin"), self.dtype, entry["num_tokens"]),
                    lines=_memmap(base.with_name(base.name + ".lines.bin"), "<i8", entry["num_lines"] + 1),
                    docs=_memmap(base.with_name(base.name + ".docs.bin"), "<i8", entry["num_docs"] + 1)))
            self._splits[name] = shards
        return self._splits[name]

    def has_split(self, name: str) -> bool:
        info = self.manifest["splits"].get(name)
        return bool(info and info["num_docs"])


def open_dataset(directory: str | Path, fingerprint: str | None = None) -> PreparedDataset:
    """Open a prepared dataset; refused (UserError) when ``fingerprint`` differs from the one it was made with."""
    return PreparedDataset(directory, fingerprint)
