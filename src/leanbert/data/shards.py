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

Opening a split checks every shard's token ids against the tokenizer's vocabulary, naming the shard: its tokens
are scanned once (a pass over memory-mapped data, so a file edited after ``prepare`` is caught too), and the
``max_token_id`` each manifest entry records is checked as well. Shard names must be plain file names: a
manifest naming ``../elsewhere`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanbert.errors import UserError
from leanbert.paths import contained_file
from leanbert.safe_io import read_json_object

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
        self.max_token_id = -1
        np.zeros(1, dtype="<i8").tofile(self.files["lines"])

    def append(self, tokens: np.ndarray, lengths: np.ndarray, doc_starts: np.ndarray) -> None:
        """tokens: (N,) ids of the lines; lengths: (L,) tokens per line; doc_starts: (L,) bool."""
        tokens.astype(self.dtype, copy=False).tofile(self.files["tokens"])
        if len(tokens):
            self.max_token_id = max(self.max_token_id, int(tokens.max()))
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
                "num_docs": self.num_docs, "max_token_id": self.max_token_id}


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
        if not manifest_path.exists() and not manifest_path.is_symlink():
            raise UserError(f"{self.directory}: not a prepared dataset (no manifest.json); "
                            "create one with `leanbert prepare`")
        self.manifest_path = manifest_path
        self.manifest = read_json_object(manifest_path, "a prepared dataset's manifest")
        if self.manifest.get("format") != FORMAT or self.manifest.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{manifest_path}: format {self.manifest.get('format')!r} version "
                            f"{self.manifest.get('format_version')!r} is not {FORMAT!r} version {FORMAT_VERSION}")
        try:
            tokenizer = self.manifest["tokenizer"]
            self.fingerprint = str(tokenizer["fingerprint"])
            self.vocab_size = int(tokenizer["vocab_size"])
            self.dtype = np.dtype(self.manifest["dtype"])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{manifest_path}: missing or malformed entry {err}; the manifest is corrupt, "
                            "prepare the dataset again") from None
        if self.dtype not in (np.dtype("<u2"), np.dtype("<u4")):
            raise UserError(f"{manifest_path}: dtype {self.manifest['dtype']!r} is not <u2 or <u4")
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise UserError(
                f"{self.directory} was prepared with tokenizer {self.fingerprint[:12]} "
                f"({tokenizer.get('source', '?')}) but the tokenizer given has fingerprint "
                f"{fingerprint[:12]}; use the dataset's own tokenizer ({self.directory / 'tokenizer'}) "
                "or prepare the corpus again with this one")
        self._splits: dict[str, list[Shard]] = {}

    def split(self, name: str) -> list[Shard]:
        if name not in self._splits:
            splits = self.manifest.get("splits")
            info = splits.get(name) if isinstance(splits, dict) else None
            if info is None or info.get("num_docs") == 0:
                raise UserError(f"{self.directory}: the {name!r} split is empty "
                                f"(prepare with --valid-fraction > 0 for a validation split)")
            try:
                self._splits[name] = [self._open_shard(name, entry) for entry in info["shards"]]
            except (KeyError, TypeError, ValueError) as err:
                raise UserError(f"{self.manifest_path}: malformed shard entry in split {name!r} ({err}); "
                                "the manifest is corrupt, prepare the dataset again") from None
        return self._splits[name]

    def _open_shard(self, split: str, entry: dict) -> Shard:
        base = contained_file(self.directory / split, entry["name"], self.manifest_path)
        counts = {key: int(entry[key]) for key in ("num_tokens", "num_lines", "num_docs")}
        if min(counts.values()) < 0:
            raise ValueError(f"negative count in {counts}")
        shard = Shard(tokens=_memmap(base.with_name(base.name + ".tokens.bin"), self.dtype, counts["num_tokens"]),
                      lines=_memmap(base.with_name(base.name + ".lines.bin"), "<i8", counts["num_lines"] + 1),
                      docs=_memmap(base.with_name(base.name + ".docs.bin"), "<i8", counts["num_docs"] + 1))
        # The tokens themselves are scanned (a file edited after `prepare` keeps its size and its manifest entry):
        # about 0.14 s per GB of ids from the page cache (benchmarks/shard_check_speed.py), a fraction of one
        # epoch's reading. The max recorded by `prepare` is checked too: a manifest that disagrees is corrupt.
        recorded = int(entry["max_token_id"]) if "max_token_id" in entry else -1
        max_id = max(recorded, _max_token_id(shard.tokens))
        if max_id >= self.vocab_size:
            raise UserError(f"{base}.tokens.bin: holds token id {max_id} but the dataset's tokenizer has "
                            f"{self.vocab_size} tokens; the dataset is corrupt, prepare it again")
        return shard


def _max_token_id(tokens: np.ndarray, chunk: int = 1 << 24) -> int:
    """Largest id in a memory-mapped token array, read in chunks so memory stays flat; -1 when empty."""
    return max((int(tokens[i:i + chunk].max()) for i in range(0, len(tokens), chunk)), default=-1)


def open_dataset(directory: str | Path, fingerprint: str | None = None) -> PreparedDataset:
    """Open a prepared dataset; refused (UserError) when ``fingerprint`` differs from the one it was made with."""
    return PreparedDataset(directory, fingerprint)
