"""Fast exact encoding of many lines: ``LineEncoder.encode(lines) -> (flat ids (N,), tokens per line (L,))``.

Two speed-ups over one ``tokenizer.encode`` per line, each checked against line-by-line encoding on the first
batch (the encoder falls back to the plain path if a tokenizer ever disagrees):

* Word cache. For tokenizers that split words at spaces before anything else can cross them (BERT
  pre-tokenizer, Whitespace, Metaspace with split=True) and whose normalizers act per character (BERT, NFKC,
  lowercase, strip, whitespace collapsing), encoding a line equals concatenating the encodings of its
  space-separated chunks. Corpora repeat words (Zipf), so each distinct chunk is encoded once by the Rust
  tokenizer and then looked up in a dict: per word that is a few dict/list operations in C. The cache holds
  at most ``cache_words`` chunks and is cleared when full, so memory stays bounded.
* Joined chunks. What is encoded (missing words, or whole lines without the cache) is joined with the separator
  token (``\\n[SEP]\\n``) into ~16 KB texts, encoded on all cores with ``encode_batch_fast``, and split at the
  separators: one Python ``Encoding`` per 16 KB instead of one per line. A text that itself contains the
  separator string is re-encoded line by line.
"""

from __future__ import annotations

import json
from itertools import repeat

import numpy as np

from leanbert.data.tokenizer import TokenizerInfo

_CHUNK_CHARS = 16 * 1024
_SPACE_SPLITTING = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
_LOCAL_NORMALIZERS = {"BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Strip"}


def _splits_at_spaces(spec: dict) -> bool:
    """True when the pipeline provably tokenizes space-separated chunks independently."""
    def pre_ok(node) -> bool:
        if node is None:
            return False
        if node["type"] == "Sequence":
            return any(pre_ok(p) for p in node["pretokenizers"]) and all(
                p["type"] in _SPACE_SPLITTING | {"Metaspace", "Punctuation", "Digits"} for p in node["pretokenizers"])
        if node["type"] == "Metaspace":
            return node.get("split", True) is True
        return node["type"] in _SPACE_SPLITTING

    def norm_ok(node) -> bool:
        if node is None:
            return True
        if node["type"] == "Sequence":
            return all(norm_ok(n) for n in node["normalizers"])
        if node["type"] == "Replace":  # only whitespace collapsing, which never joins two chunks
            return node.get("pattern") in ({"Regex": "\\s+"}, {"String": " "}) and node.get("content") == " "
        return node["type"] in _LOCAL_NORMALIZERS

    return pre_ok(spec.get("pre_tokenizer")) and norm_ok(spec.get("normalizer"))


class LineEncoder:
    """Lines -> (flat token ids (N,) int64, tokens per line (L,) int64), no special tokens added."""

    def __init__(self, info: TokenizerInfo, word_cache: bool = True, cache_words: int = 1 << 19):
        self.tokenizer = info.tokenizer
        self.sep_id = info.sep_id
        self.joiner = f"\n{info.tokenizer.id_to_token(info.sep_id)}\n"
        self.use_cache = word_cache and _splits_at_spaces(json.loads(info.tokenizer.to_str()))
        self.cache_words = cache_words
        self.checked = False  # the first batch is compared with line-by-line encoding
        self.joined_ok = True
        self._reset_cache()

    def _reset_cache(self) -> None:
        self.cache: dict[str, int] = {}  # chunk -> row of the table
        self.table_flat = np.zeros(0, dtype=np.int64)  # ids of all cached chunks, back to back
        self.table_start = np.zeros(0, dtype=np.int64)  # (W,)
        self.table_len = np.zeros(0, dtype=np.int64)  # (W,)

    # --- plain paths ---------------------------------------------------------------------------------------
    def _per_line(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch_fast(lines, add_special_tokens=False)
        ids = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for seq in ids for t in seq), dtype=np.int64, count=int(lengths.sum()))
        return flat, lengths

    def _joined(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not lines:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        groups, current, size = [], [], 0
        for line in lines:
            current.append(line)
            size += len(line)
            if size >= _CHUNK_CHARS:
                groups.append(current)
                current, size = [], 0
        if current:
            groups.append(current)
        encodings = self.tokenizer.encode_batch_fast([self.joiner.join(g) for g in groups],
                                                     add_special_tokens=False)
        flats, lengths = [], []
        for group, encoding in zip(groups, encodings):
            ids = np.array(encoding.ids, dtype=np.int64)
            is_sep = ids == self.sep_id
            seps = np.flatnonzero(is_sep)
            if len(seps) != len(group) - 1:  # the text itself held the separator string
                flat, lens = self._per_line(group)
            else:
                lens = np.diff(np.concatenate(([-1], seps, [len(ids)]))) - 1
                flat = ids[~is_sep]
            flats.append(flat)
            lengths.append(lens)
        return np.concatenate(flats), np.concatenate(lengths)

    # --- word cache ----------------------------------------------------------------------------------------
    def _cached(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(self.cache) > self.cache_words:
            self._reset_cache()
        # one C-level split for the whole batch; lines hold no "\n" and split(" ") keeps empty chunks, so a
        # line with k spaces has exactly k + 1 chunks
        words = " ".join(lines).split(" ")
        per_line = np.fromiter(map(str.count, lines, repeat(" ")), dtype=np.int64, count=len(lines)) + 1
        cache = self.cache
        rows = list(map(cache.get, words))
        if None in rows:
            missing = sorted(set(words).difference(cache))  # sorted: the same table layout every run
            flat, lens = self._joined(missing)
            base = len(self.table_len)
            cache.update(zip(missing, range(base, base + len(missing))))
            starts = len(self.table_flat) + np.concatenate(([0], np.cumsum(lens)[:-1]))
            self.table_flat = np.concatenate((self.table_flat, flat))
            self.table_start = np.concatenate((self.table_start, starts))
            self.table_len = np.concatenate((self.table_len, lens))
            rows = list(map(cache.__getitem__, words))
        rows = np.array(rows, dtype=np.int64)  # (W,)
        word_len = self.table_len[rows]  # (W,)
        ends = np.cumsum(word_len)  # (W,)
        total = int(ends[-1]) if len(ends) else 0
        # ragged gather: token k of word w sits at table_start[w] + k
        offsets = np.repeat(self.table_start[rows] - (ends - word_len), word_len)  # (N,)
        flat = self.table_flat[offsets + np.arange(total)]
        word_end = np.cumsum(per_line)  # (L,) index after each line's last word
        token_end = np.concatenate(([0], ends))[word_end]
        lengths = np.diff(np.concatenate(([0], token_end)))
        return flat, lengths

    def encode(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not self.checked:
            self.checked = True
            sample = lines[:256]
            reference = self._per_line(sample)

            def same(result) -> bool:
                return np.array_equal(result[0], reference[0]) and np.array_equal(result[1], reference[1])

            self.joined_ok = same(self._joined(sample))
            if self.use_cache:
                self.use_cache = self.joined_ok and same(self._cached(sample))
        if self.use_cache:
            return self._cached(lines)
        return self._joined(lines) if self.joined_ok else self._per_line(lines)
