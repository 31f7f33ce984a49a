"""TNF's rare-word table: whole words counted over a prepared dataset, and their occurrences in a batch
(the ``rare_words`` batch feature: ``data.features: [rare_words]``, ``Batch.extras["rare_words"]``).

A word is a run of word pieces, as whole-word masking defines it (data/masking.py): a piece starts a word when
the vocabulary's ``word_start`` table says so, or when it follows a special token or begins a line (a stored
line) or a sequence (a batch row). Special tokens ([UNK] included) are never part of a word.

``build_rare_word_table`` streams the ``train`` split's shards twice, in chunks of whole lines:

1. Count. Each word becomes a 64-bit polynomial hash of its pieces (numpy, vectorized); a chunk's
   ``np.unique`` counts are merged into one sorted (hash, count) array. Memory = 16 bytes per distinct word
   plus ~3x that while merging: a 1 GB corpus (~250M pieces, a few million distinct words) costs ~50-200 MB,
   independent of the corpus length beyond its vocabulary of words.
2. Collect. The hashes whose count lies in [min_count, max_count] get their pieces from their first
   occurrence; every occurrence is checked against a second, independent 64-bit hash, so a hash collision
   (chance ~ D^2 / 2^65 for D distinct words) is detected and the colliding entry dropped, never merged.

Rare = count within [min_count, max_count] (TNF, Wu et al. 2021: "roughly 100-500" on their corpus; keys
``tnf.min_count`` / ``tnf.max_count``). When more words qualify than ``max_words``, we keep the most frequent
ones (most note updates per epoch; the paper does not cap; our choice), ties broken by the pieces. Word id =
position in that order. The table is written atomically as ``DATA/rare_words.json`` with the settings it was
made with, so a pretraining run with other ``tnf.*`` settings is refused instead of silently using it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from leanbert.atomic import write_json_atomically
from leanbert.data.features import FeatureSpec, register_feature
from leanbert.data.shards import open_dataset
from leanbert.data.tokenizer import TokenizerInfo
from leanbert.errors import UserError
from leanbert.memory_check import MAX_VOCAB_SIZE
from leanbert.safe_io import read_json_object

RARE_WORDS_FILE = "rare_words.json"
FORMAT = "leanbert-rare-words"
FORMAT_VERSION = 1
# two independent odd multipliers: hash 1 keys the counter, hash 2 checks hash 1's matches
MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
CHUNK_TOKENS = 1 << 22  # pieces per streamed chunk (~32 MB of int64 work arrays)


@dataclass(frozen=True)
class RareWordSettings:
    """What makes a word rare: count in [min_count, max_count], at most max_words words (``tnf.*`` keys)."""

    min_count: int = 100
    max_count: int = 500
    max_words: int = 20000

    def __post_init__(self) -> None:
        for name in ("min_count", "max_count", "max_words"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"tnf.{name}={value!r} must be an integer >= 1")
        if self.max_count < self.min_count:
            raise UserError(f"tnf.max_count={self.max_count} is below tnf.min_count={self.min_count}")


@dataclass(frozen=True)
class RareWordTable:
    """words[i]: the pieces of rare word i; counts[i]: its corpus count (train split)."""

    words: tuple[tuple[int, ...], ...]
    counts: tuple[int, ...]
    settings: RareWordSettings
    fingerprint: str  # the tokenizer's: piece ids mean nothing under another tokenizer
    collisions: int = 0  # hash collisions detected and dropped while building

    def __len__(self) -> int:
        return len(self.words)


@dataclass(frozen=True)
class Words:
    """Words of a flat piece array: ``pieces`` (M,) the non-special pieces; ``positions`` (M,) their index in
    the flat array; ``starts`` (W,) index into ``pieces`` where each word starts; ``lengths`` (W,)."""

    pieces: np.ndarray
    positions: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray


def find_words(ids: np.ndarray, boundary: np.ndarray, word_start: np.ndarray, is_special: np.ndarray,
               ) -> Words:
    """ids: (N,) piece ids; boundary: (N,) bool, True where a line or a sequence begins."""
    keep = ~is_special[ids]  # (N,)
    positions = np.flatnonzero(keep)  # (M,)
    pieces = ids[positions]  # (M,)
    flag = word_start[pieces] | boundary[positions]  # (M,)
    if len(positions):
        flag[0] = True
        flag[1:] |= np.diff(positions) != 1  # a special token sat in between
    starts = np.flatnonzero(flag)  # (W,)
    lengths = np.diff(np.append(starts, len(pieces)))  # (W,)
    return Words(pieces=pieces, positions=positions, starts=starts, lengths=lengths)


def word_hashes(words: Words, multiplier: int) -> np.ndarray:
    """(W,) uint64: sum_i (piece_i + 1) * multiplier^(i+1) mod 2^64 over a word's pieces, xor its length."""
    if len(words.starts) == 0:
        return np.zeros(0, dtype=np.uint64)
    longest = int(words.lengths.max())
    powers = np.empty(longest, dtype=np.uint64)
    value = 1
    for i in range(longest):
        value = (value * multiplier) % (1 << 64)
        powers[i] = value
    offset = np.arange(len(words.pieces)) - np.repeat(words.starts, words.lengths)  # (M,) place in its word
    terms = (words.pieces.astype(np.uint64) + np.uint64(1)) * powers[offset]  # (M,) wraps mod 2^64
    return np.add.reduceat(terms, words.starts) ^ words.lengths.astype(np.uint64)  # (W,)


def _line_chunks(shards, chunk_tokens: int, desc: str = "rare-words"):
    """(pieces, line-start flags) for runs of whole lines of every shard, ~``chunk_tokens`` pieces each; a
    progress bar (on a terminal) counts the tokens, as a pass over a large corpus takes minutes."""
    total = sum(len(shard.tokens) for shard in shards)
    with tqdm(total=total, desc=desc, unit="tok", unit_scale=True, disable=None) as bar:
        for pieces, boundary in _shard_chunks(shards, chunk_tokens):
            yield pieces, boundary
            bar.update(len(pieces))


def _shard_chunks(shards, chunk_tokens: int):
    for shard in shards:
        lines = np.asarray(shard.lines)
        first = 0
        while first < len(lines) - 1:
            last = int(np.searchsorted(lines, lines[first] + chunk_tokens, side="right")) - 1
            last = min(max(last, first + 1), len(lines) - 1)  # at least one line, however long
            begin, end = int(lines[first]), int(lines[last])
            pieces = np.asarray(shard.tokens[begin:end], dtype=np.int64)
            boundary = np.zeros(end - begin, dtype=bool)
            boundary[lines[first:last][lines[first:last] < end] - begin] = True
            yield pieces, boundary
            first = last


def count_words(shards, tokenizer: TokenizerInfo, chunk_tokens: int = CHUNK_TOKENS,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Streaming whole-word counts: (sorted unique hashes (D,) uint64, counts (D,) int64)."""
    keys = np.zeros(0, dtype=np.uint64)
    counts = np.zeros(0, dtype=np.int64)
    for pieces, boundary in _line_chunks(shards, chunk_tokens, "rare-words: counting"):
        words = find_words(pieces, boundary, tokenizer.word_start, tokenizer.is_special)
        chunk_keys, chunk_counts = np.unique(word_hashes(words, MULTIPLIERS[0]), return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, chunk_keys]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([counts, chunk_counts]),
                             minlength=len(keys)).astype(np.int64)
    return keys, counts


def build_rare_word_table(directory: str | Path, tokenizer: TokenizerInfo, settings: RareWordSettings,
                          chunk_tokens: int = CHUNK_TOKENS) -> RareWordTable:
    """The rare-word table of a prepared dataset's train split (see the module docstring)."""
    shards = open_dataset(directory, fingerprint=tokenizer.fingerprint).split("train")
    keys, counts = count_words(shards, tokenizer, chunk_tokens)
    in_range = (counts >= settings.min_count) & (counts <= settings.max_count)
    cand_keys, cand_counts = keys[in_range], counts[in_range]  # (C,) sorted by key
    del keys, counts
    if len(cand_keys) == 0:  # nothing in range: no second pass
        return RareWordTable(words=(), counts=(), settings=settings, fingerprint=tokenizer.fingerprint)
    pieces_of: dict[int, tuple[int, ...]] = {}
    check_of = np.zeros(len(cand_keys), dtype=np.uint64)  # second hash of the first occurrence
    collided = np.zeros(len(cand_keys), dtype=bool)
    for pieces, boundary in _line_chunks(shards, chunk_tokens, "rare-words: collecting"):
        words = find_words(pieces, boundary, tokenizer.word_start, tokenizer.is_special)
        hashes = word_hashes(words, MULTIPLIERS[0])
        slot = np.minimum(np.searchsorted(cand_keys, hashes), len(cand_keys) - 1)  # (W,)
        hit = np.flatnonzero(cand_keys[slot] == hashes)  # (H,) words whose hash is a candidate's
        if len(hit) == 0:
            continue
        second = word_hashes(words, MULTIPLIERS[1])[hit]  # (H,)
        for w, s, h2 in zip(hit.tolist(), slot[hit].tolist(), second.tolist()):
            if s not in pieces_of:
                start = int(words.starts[w])
                pieces_of[s] = tuple(words.pieces[start:start + int(words.lengths[w])].tolist())
                check_of[s] = h2
            elif int(check_of[s]) != h2:
                collided[s] = True
    keep = [s for s in pieces_of if not collided[s]]
    keep.sort(key=lambda s: (-int(cand_counts[s]), pieces_of[s]))
    keep = keep[:settings.max_words]
    return RareWordTable(words=tuple(pieces_of[s] for s in keep),
                         counts=tuple(int(cand_counts[s]) for s in keep), settings=settings,
                         fingerprint=tokenizer.fingerprint, collisions=int(collided.sum()))


def write_rare_word_table(directory: str | Path, table: RareWordTable) -> Path:
    """Write ``DATA/rare_words.json`` atomically (a reader sees the old table or the new one, never half)."""
    path = Path(directory) / RARE_WORDS_FILE
    write_json_atomically(path, {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tokenizer_fingerprint": table.fingerprint,
        **dataclasses.asdict(table.settings), "num_words": len(table), "collisions_dropped": table.collisions,
        "words": [{"id": i, "pieces": list(p), "count": c}
                  for i, (p, c) in enumerate(zip(table.words, table.counts))],
    })
    return path


def load_rare_word_table(directory: str | Path, fingerprint: str) -> RareWordTable:
    """Read ``DATA/rare_words.json``; refused when missing, malformed or made with another tokenizer."""
    path = Path(directory) / RARE_WORDS_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing; TNF needs the dataset's rare-word table: run "
                        f"`leanbert rare-words {directory}` (with the same tnf.* settings)")
    raw = read_json_object(path, "a rare-word table")
    if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: not a {FORMAT} version {FORMAT_VERSION} file; run `leanbert rare-words` "
                        "again")
    if raw.get("tokenizer_fingerprint") != fingerprint:
        raise UserError(f"{path}: made with another tokenizer; run `leanbert rare-words {directory}` again")
    try:
        settings = RareWordSettings(int(raw["min_count"]), int(raw["max_count"]), int(raw["max_words"]))
        entries = raw["words"]
        words = tuple(tuple(int(p) for p in e["pieces"]) for e in entries)
        counts = tuple(int(e["count"]) for e in entries)
        ids = [int(e["id"]) for e in entries]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: malformed entry ({err}); run `leanbert rare-words` again") from None
    if ids != list(range(len(ids))) or len(ids) > settings.max_words or any(not w for w in words):
        raise UserError(f"{path}: word ids must be 0..n-1 with n <= max_words and non-empty pieces")
    bad = next((p for w in words for p in w if not 0 <= p < MAX_VOCAB_SIZE), None)
    if bad is not None:  # an edited table: the matcher's int64 arrays would overflow
        raise UserError(f"{path}: piece id {bad} is not a token id (0 <= id < {MAX_VOCAB_SIZE}); run "
                        "`leanbert rare-words` again")
    return RareWordTable(words=words, counts=counts, settings=settings, fingerprint=fingerprint,
                         collisions=int(raw.get("collisions_dropped", 0)))


class RareWordMatcher:
    """Finds a table's words in a batch of sequences (exact: a hash match is confirmed piece by piece)."""

    def __init__(self, table: RareWordTable, tokenizer: TokenizerInfo):
        self.table, self.word_start, self.is_special = table, tokenizer.word_start, tokenizer.is_special
        lengths = np.array([len(w) for w in table.words], dtype=np.int64)
        flat = np.array([p for w in table.words for p in w], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64) if len(lengths) else lengths
        hashes = word_hashes(Words(flat, np.arange(len(flat)), starts, lengths), MULTIPLIERS[0])
        self.order = np.argsort(hashes, kind="stable")  # (R,) word ids by hash
        self.sorted_hashes = hashes[self.order]

    def __call__(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """ids: (B, T) uncorrupted piece ids. Returns (rows, starts, ends, word ids), each (K,) int64,
        ``ends`` exclusive, occurrences in row-major order."""
        B, T = ids.shape
        empty = np.zeros(0, dtype=np.int64)
        if len(self.sorted_hashes) == 0:
            return empty, empty, empty, empty
        boundary = np.zeros((B, T), dtype=bool)
        boundary[:, 0] = True
        words = find_words(ids.reshape(-1), boundary.reshape(-1), self.word_start, self.is_special)
        hashes = word_hashes(words, MULTIPLIERS[0])  # (W,)
        slot = np.minimum(np.searchsorted(self.sorted_hashes, hashes), len(self.sorted_hashes) - 1)  # (W,)
        hit = np.flatnonzero(self.sorted_hashes[slot] == hashes)  # (K',) candidates
        found: list[tuple[int, int, int]] = []
        for w, s in zip(hit.tolist(), slot[hit].tolist()):
            start, n = int(words.starts[w]), int(words.lengths[w])
            word_id = int(self.order[s])
            if tuple(words.pieces[start:start + n].tolist()) == self.table.words[word_id]:
                first = int(words.positions[start])  # flat index; a word never crosses a row (boundary)
                found.append((first, first + n, word_id))
        if not found:
            return empty, empty, empty, empty
        first, last, word = (np.array(column, dtype=np.int64) for column in zip(*found))
        return first // T, first % T, (last - 1) % T + 1, word


@dataclass
class RareWords:
    """Occurrences of a rare-word table's words in a batch (``Batch.extras["rare_words"]``), in row-major order.

    rows, starts, ends, word_ids: (K,) long; occurrence k covers pieces starts[k] .. ends[k] - 1 of sequence
    rows[k] and is word word_ids[k] of the table. Found on the uncorrupted sequence, before masking.
    settings:  (min_count, max_count, max_words) the table was made with, so a consumer can refuse another.
    """

    rows: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor
    word_ids: torch.Tensor
    settings: tuple[int, int, int]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> RareWords:
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, non_blocking=non_blocking)

        return RareWords(move(self.rows), move(self.starts), move(self.ends), move(self.word_ids),
                         self.settings)

    def __len__(self) -> int:
        return self.rows.shape[0]


class RareWordProducer:
    """The ``rare_words`` batch feature: a batch's occurrences of the words of ``data.path``'s table (the valid
    split uses the training dataset's table too: word ids always refer to it)."""

    def __init__(self, data_config, tokenizer: TokenizerInfo):
        self.matcher = RareWordMatcher(load_rare_word_table(data_config.path, tokenizer.fingerprint), tokenizer)
        s = self.matcher.table.settings
        self.settings = (s.min_count, s.max_count, s.max_words)

    def __call__(self, ids: np.ndarray) -> RareWords:
        rows, starts, ends, word_ids = self.matcher(ids)  # each (K,)
        return RareWords(rows=torch.from_numpy(rows), starts=torch.from_numpy(starts),
                         ends=torch.from_numpy(ends), word_ids=torch.from_numpy(word_ids), settings=self.settings)


RARE_WORDS_FEATURE = register_feature(FeatureSpec(name="rare_words", build=RareWordProducer))
