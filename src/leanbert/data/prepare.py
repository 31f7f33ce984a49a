"""``leanbert prepare``: corpus files -> sharded token arrays + manifest (see ``shards.py`` for the format).

Streaming with bounded memory: a reader thread turns files into batches of ~``batch_chars`` characters (a bounded
queue holds at most a few), the main thread tokenizes each batch with the Rust tokenizer on all cores
(``encode_batch_fast`` releases the GIL, so reading overlaps tokenizing) and appends it to the current shard.
Peak memory depends on the batch size and the longest line, never on the corpus size.

Encoding (``encode.py``) uses a bounded word cache and joins lines into long texts, both checked to give
exactly the tokens of line-by-line encoding.

Deterministic: inputs are expanded in sorted order, batches and shards depend only on the input bytes, the
validation split is a hash of the global document index, and the manifest holds no timestamps.
"""

from __future__ import annotations

import json
import queue
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
from tqdm import tqdm

from leanbert.config import check_integer
from leanbert.data.encode import LineEncoder
from leanbert.data.shards import FORMAT, FORMAT_VERSION, SPLITS, ShardWriter, token_dtype
from leanbert.data.sources import DEFAULT_MAX_LINE_BYTES, SkipStats, expand_inputs, iter_file_lines
from leanbert.data.tokenizer import load_tokenizer
from leanbert.errors import UserError
from leanbert.outdir import check_out_dir, publish_dir

_QUEUE_BATCHES = 3


def valid_mask(doc_ids: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """(D,) bool: which global document indices go to the validation split (splitmix64 hash, uniform)."""
    if fraction <= 0:
        return np.zeros(len(doc_ids), dtype=bool)
    with np.errstate(over="ignore"):
        z = doc_ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


class _SplitWriter:
    """One split's shards; a new shard starts at a document boundary once ``shard_tokens`` is reached."""

    def __init__(self, directory: Path, dtype: np.dtype, shard_tokens: int):
        self.directory = directory
        self.dtype = dtype
        self.shard_tokens = shard_tokens
        self.shards: list[dict] = []
        self.current: ShardWriter | None = None

    def append(self, tokens: np.ndarray, lengths: np.ndarray, doc_starts: np.ndarray) -> None:
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        line = 0
        while line < len(lengths):
            if self.current is None:
                self.directory.mkdir(exist_ok=True)
                self.current = ShardWriter(self.directory, len(self.shards), self.dtype)
            # first later document start at which the current shard would be full
            room = self.shard_tokens - self.current.num_tokens
            full = np.flatnonzero(doc_starts[line:] & (offsets[line:-1] - offsets[line] >= room))
            full = full[full > 0] if self.current.num_lines == 0 else full
            end = line + int(full[0]) if len(full) else len(lengths)
            if end > line:
                self.current.append(tokens[offsets[line]:offsets[end]], lengths[line:end], doc_starts[line:end])
            if end < len(lengths):
                self.shards.append(self.current.close())
                self.current = None
            line = end

    def close(self) -> dict:
        if self.current is not None:
            self.shards.append(self.current.close())
            self.current = None
        return {"num_tokens": sum(s["num_tokens"] for s in self.shards),
                "num_lines": sum(s["num_lines"] for s in self.shards),
                "num_docs": sum(s["num_docs"] for s in self.shards), "shards": self.shards}


def _reader(files, stats, text_field, max_line_bytes, batch_chars, out: queue.Queue, stop: threading.Event):
    """Thread: put (file index, lines, doc_starts) batches on ``out`` (never spanning files), then None."""
    try:
        for index, path in enumerate(files):
            lines: list[str] = []
            starts: list[bool] = []
            size = 0
            first = True
            for starts_doc, line in iter_file_lines(path, stats, text_field, max_line_bytes):
                lines.append(line)
                starts.append(starts_doc or first)
                first = False
                size += len(line)
                if size >= batch_chars:
                    out.put((index, lines, starts))
                    lines, starts, size = [], [], 0
                    if stop.is_set():
                        return
            if lines:
                out.put((index, lines, starts))
        out.put(None)
    except BaseException as err:  # hand it to the main thread, which re-raises
        out.put(err)


class _DocumentSplitter:
    """Batches of encoded lines -> the two splits' writers, with global document ids: a line that tokenizes to
    nothing is dropped and its document start moves to the next line kept; a new file starts a document; a
    document goes to the validation split by the hash of its id (``valid_mask``). Counts go into ``sources``."""

    def __init__(self, writers: dict[str, _SplitWriter], sources: list[dict], valid_fraction: float):
        self.writers, self.sources, self.valid_fraction = writers, sources, valid_fraction
        self.next_doc = 0  # global index of the next document
        self.last_file = -1
        self.last_kept_doc = -1

    def add(self, index: int, flat: np.ndarray, lengths: np.ndarray, starts: list[bool]) -> int:
        """One batch of file ``index`` (its lines' tokens ``flat`` and ``lengths``); returns the tokens kept."""
        doc_starts = np.array(starts, dtype=bool)
        if index != self.last_file:
            doc_starts[0] = True
            self.last_file = index
        doc_ids = self.next_doc - 1 + np.cumsum(doc_starts)
        self.next_doc = int(doc_ids[-1]) + 1
        keep = lengths > 0
        kept_ids = doc_ids[keep]
        kept_starts = np.ones(len(kept_ids), dtype=bool)
        kept_starts[1:] = kept_ids[1:] != kept_ids[:-1]
        if len(kept_ids):
            kept_starts[0] = kept_ids[0] != self.last_kept_doc
            self.last_kept_doc = int(kept_ids[-1])
        lengths_kept = lengths[keep]
        is_valid = valid_mask(kept_ids, self.valid_fraction)
        token_valid = np.repeat(is_valid, lengths_kept)
        for name, line_mask, token_mask in (("train", ~is_valid, ~token_valid), ("valid", is_valid, token_valid)):
            if line_mask.any():
                self.writers[name].append(flat[token_mask], lengths_kept[line_mask], kept_starts[line_mask])
        source = self.sources[index]
        source["docs"] += int(np.count_nonzero(kept_starts))
        source["lines"] += int(len(lengths_kept))
        source["tokens"] += int(lengths_kept.sum())
        return int(lengths_kept.sum())


def _copy_tokenizer_files(tokenizer_dir: Path, target: Path) -> None:
    """The tokenizer travels with the dataset (a model trained on it copies it from there)."""
    target.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, target / name)


def prepare_dataset(inputs: list[str], tokenizer_dir: str | Path, out_dir: str | Path,
                    valid_fraction: float = 0.01, text_field: str = "text",
                    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, shard_tokens: int = 1 << 27,
                    batch_chars: int = 1 << 20, overwrite: bool = False, progress: bool = True,
                    word_cache: bool = True) -> dict:
    """Tokenize corpus files into a prepared dataset at ``out_dir``; returns the manifest (also written there).

    Skipped input is reported on stderr (first messages per kind) and counted in the manifest. The dataset
    appears at ``out_dir`` only when complete (built in a temp dir next to it, then renamed).
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise UserError(f"--valid-fraction {valid_fraction} must be in [0, 1)")
    check_integer("--max-line-bytes", max_line_bytes, 1)
    check_integer("--shard-tokens", shard_tokens, 1)
    info = load_tokenizer(tokenizer_dir)
    out_dir = check_out_dir(out_dir, "prepare", [*inputs, tokenizer_dir], overwrite)  # before the long work
    files = expand_inputs(inputs)
    dtype = token_dtype(info.vocab_size)
    bar = tqdm(unit="tok", unit_scale=True, desc="prepare", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    stats = SkipStats(report=lambda message: tqdm.write(f"warning: {message}", file=sys.stderr))
    batches: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
    stop = threading.Event()
    thread = threading.Thread(target=_reader, daemon=True, name="prepare-reader",
                              args=(files, stats, text_field, max_line_bytes, batch_chars, batches, stop))
    manifest: dict = {}

    def fill(tmp: Path) -> None:
        encoder = LineEncoder(info, word_cache=word_cache)
        sources = [{"path": str(p), "bytes": p.stat().st_size, "docs": 0, "lines": 0, "tokens": 0} for p in files]
        splitter = _DocumentSplitter({name: _SplitWriter(tmp / name, dtype, shard_tokens) for name in SPLITS},
                                     sources, valid_fraction)
        thread.start()
        while (item := batches.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            index, lines, starts = item
            if index != splitter.last_file:
                bar.set_postfix_str(f"file {index + 1}/{len(files)}", refresh=False)
            flat, lengths = encoder.encode(lines)
            bar.update(splitter.add(index, flat, lengths, starts))
        thread.join()
        bar.close()
        splits = {name: writer.close() for name, writer in splitter.writers.items()}
        total_tokens = sum(s["num_tokens"] for s in splits.values())
        if total_tokens == 0:
            raise UserError(f"no text found in {', '.join(inputs)} ({stats.total} inputs skipped, see above)")
        _copy_tokenizer_files(info.path, tmp / "tokenizer")
        manifest.update({
            "format": FORMAT, "format_version": FORMAT_VERSION, "dtype": dtype.str,
            "tokenizer": {"fingerprint": info.fingerprint, "kind": info.kind, "vocab_size": info.vocab_size,
                          "source": str(tokenizer_dir)},
            "valid_fraction": valid_fraction, "text_field": text_field, "max_line_bytes": max_line_bytes,
            "num_tokens": total_tokens, "num_lines": sum(s["num_lines"] for s in splits.values()),
            "num_docs": sum(s["num_docs"] for s in splits.values()),
            "splits": splits, "sources": sources,
            "skipped": dict(stats.counts), "skipped_messages": stats.messages,
        })
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    try:
        publish_dir(out_dir, "prepare", fill, inputs=[*inputs, *files, tokenizer_dir], overwrite=overwrite)
        return manifest
    except BaseException:
        stop.set()
        while thread.is_alive():  # unblock the reader so it can finish
            try:
                batches.get(timeout=0.1)
            except queue.Empty:
                pass
        bar.close()
        raise
